"""Rasterise a city plan into a :class:`CityMap`: streets, areas, buildings, hedges, trees, cars.

Each object is painted inside the window of map cells that can hold it, by
testing the street-frame coordinates ``(u, v)`` of those cells, so objects
follow rotated and warped streets exactly as the streets do. Objects are
painted one by one in plan order, a later one over an earlier one, by the
compiled loops of :mod:`painting`; this module gathers what they need per
object (:class:`Boxes`, found once per car spot of a city by
:class:`SpotBoxes`) and the texture's random draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import painting
from .citymap import CityMap
from .frame import StreetFrame
from .materials import IS_VEGETATION, TEXTURE_NOISE, Material
from .plan import Area, Building, Car, CarSpot, CityPlan, Hedge, Tree

MARKING = (228, 228, 218)
DASH_METRES = 6.0
CAR_LENGTH, CAR_WIDTH, CAR_HEIGHT = 4.6, 1.9, 1.5


class Canvas:
    """A map being painted, with the street coordinates of every cell centre and the boxes of its car spots."""

    def __init__(self, city: CityMap, frame: StreetFrame, uv: tuple[np.ndarray, np.ndarray] | None = None,
                 spots: SpotBoxes | None = None) -> None:
        self.city = city
        self.frame = frame
        full = slice(0, city.size)
        self.u, self.v = uv if uv is not None else frame.cell_uv(full, full)
        self.spots = spots if spots is not None else SpotBoxes()


def rasterise(plan: CityPlan, texture: np.random.Generator) -> tuple[CityMap, Canvas, np.ndarray]:
    """The static city (everything but the cars), its canvas for painting cars later, and its street cells.

    Street cells are the roads and sidewalks of the street network (not
    canals, plazas or parking lots): where street-level cameras stand.
    """
    city = CityMap.blank(plan.frame.size, Material.GRASS, plan.palette.grass)
    canvas = Canvas(city, plan.frame)
    paint_areas(canvas, plan.areas)
    streets = paint_streets(canvas, plan)
    paint_buildings(canvas, plan.buildings)
    paint_hedges(canvas, plan.hedges)
    paint_trees(canvas, plan.trees)
    add_texture(city, texture)
    return city, canvas, streets


def with_cars(canvas: Canvas, cars: list[Car]) -> CityMap:
    """A copy of the canvas's city with ``cars`` parked or driving on its open ground."""
    painter = Canvas(canvas.city.copy(), canvas.frame, (canvas.u, canvas.v), canvas.spots)
    paint_cars(painter, cars)
    return painter.city


def _extent(item: Area | Building | Hedge) -> tuple[float, float, float, float]:
    return item.u0, item.u1, item.v0, item.v1


def _tree_extent(tree: Tree) -> tuple[float, float, float, float]:
    return tree.u - tree.radius, tree.u + tree.radius, tree.v - tree.radius, tree.v + tree.radius


def _car_extents(spots: list[CarSpot]) -> np.ndarray:
    """``(u0, u1, v0, v1)`` of a car at each spot, its long side along ``u`` or ``v`` as the spot says."""
    u, v = np.array([s.u for s in spots], np.float64), np.array([s.v for s in spots], np.float64)
    along_u = np.array([s.along_u for s in spots], bool)
    half_u = np.where(along_u, CAR_LENGTH / 2, CAR_WIDTH / 2)
    half_v = np.where(along_u, CAR_WIDTH / 2, CAR_LENGTH / 2)
    return np.stack([u - half_u, u + half_u, v - half_v, v + half_v], axis=1)


def paint_streets(canvas: Canvas, plan: CityPlan) -> np.ndarray:
    """Sidewalks, canals, roads and dashed centre lines, in that order (roads cross canals as bridges).

    Returns the cells of roads and sidewalks.
    """
    city = canvas.city
    covers = []
    for axis, coord in (("u", canvas.u), ("v", canvas.v)):
        streets = [s for s in plan.streets if s.axis == axis]
        width = np.array([s.width for s in streets], np.float64)
        cover = np.empty(coord.shape, np.uint8)
        painting.cover_streets(coord, np.array([s.position for s in streets], np.float64), width / 2,
                               width / 2 + np.array([s.sidewalk for s in streets], np.float64),
                               np.array([s.canal for s in streets], bool), width >= 9, cover)
        covers.append(cover)
    palette = plan.palette
    grounds = np.array([Material.PAVEMENT, Material.WATER, Material.ROAD], np.uint8)
    colours = np.array([palette.pavement, palette.water, palette.road], np.uint8)
    streets = np.empty(covers[0].shape, bool)
    painting.paint_street_cover(*covers, canvas.u, canvas.v, DASH_METRES, grounds, colours,
                                np.array(MARKING, np.uint8), city.material, city.top, city.side, city.height,
                                city.base, streets)
    return streets


@dataclass
class Boxes:
    """Street-frame boxes ``(u0, u1, v0, v1)`` of some objects, with what painting them needs.

    ``windows`` are the first and end map rows and columns that can hold
    each box (:meth:`StreetFrame.window_bounds`), ``axes`` its unit ``u``
    direction (east, north) at its window's middle, from the gradient of
    ``u`` there, so that it follows warped streets.
    """

    extents: np.ndarray
    windows: np.ndarray
    axes: np.ndarray

    @classmethod
    def of(cls, canvas: Canvas, extents: np.ndarray) -> "Boxes":
        """The boxes of ``extents``, one ``(u0, u1, v0, v1)`` row per object, on ``canvas``."""
        bounds = canvas.frame.window_bounds(extents)
        r0, r1, c0, c1 = bounds
        last = canvas.city.size - 2
        r, c = np.clip((r0 + r1) // 2, 1, last), np.clip((c0 + c1) // 2, 1, last)
        east = canvas.u[r, c + 1] - canvas.u[r, c - 1]
        north = canvas.u[r - 1, c] - canvas.u[r + 1, c]  # row numbers grow southwards
        # math.hypot, as the generator always used: numpy's hypot need not round the same way.
        norm = np.array(list(map(math.hypot, east.tolist(), north.tolist())), np.float64)
        return cls(np.ascontiguousarray(extents, np.float64), np.stack(bounds, axis=1),
                   np.stack([east / norm, north / norm], axis=1))

    def take(self, rows: np.ndarray) -> "Boxes":
        """The boxes of ``rows``, in that order."""
        return Boxes(self.extents[rows], self.windows[rows], self.axes[rows])

    def extended(self, more: "Boxes") -> "Boxes":
        """These boxes, then ``more``."""
        return Boxes(np.concatenate([self.extents, more.extents]), np.concatenate([self.windows, more.windows]),
                     np.concatenate([self.axes, more.axes]))


class SpotBoxes:
    """The boxes of the car spots painted so far on one city, each found once.

    The cars of the satellite moment and of each capture day stand mostly
    on the same kerb spots, and a box's window and axes cost far more to
    find than to look up; each depends on the box alone.
    """

    def __init__(self) -> None:
        self.row: dict[CarSpot, int] = {}
        self.boxes: Boxes | None = None

    def of(self, canvas: Canvas, spots: list[CarSpot]) -> Boxes:
        """The boxes of cars at ``spots``, in order."""
        new = list(dict.fromkeys(spot for spot in spots if spot not in self.row))
        if new:
            found = Boxes.of(canvas, _car_extents(new))
            self.row.update(zip(new, range(len(self.row), len(self.row) + len(new))))
            self.boxes = found if self.boxes is None else self.boxes.extended(found)
        return self.boxes.take(np.array([self.row[spot] for spot in spots], np.int64))


def paint_areas(canvas: Canvas, areas: list[Area]) -> None:
    """Ground patches in list order, each over whatever is there (the last patch over a cell wins)."""
    if not areas:
        return
    boxes = Boxes.of(canvas, np.array([_extent(a) for a in areas], np.float64))
    city = canvas.city
    painting.paint_areas(canvas.u, canvas.v, boxes.extents, boxes.windows, np.array([a.ellipse for a in areas], bool),
                         np.array([a.material for a in areas], np.uint8), np.array([a.colour for a in areas], np.uint8),
                         city.material, city.top, city.side)


def paint_buildings(canvas: Canvas, buildings: list[Building]) -> None:
    """Buildings in list order, each over whatever is there: flat roofs with a parapet, or gables.

    A gable's ridge runs along the longer side and the roof falls linearly to the eaves.
    """
    if not buildings:
        return
    boxes = Boxes.of(canvas, np.array([_extent(b) for b in buildings], np.float64))
    roofs = np.array([b.roof for b in buildings])
    city = canvas.city
    painting.paint_buildings(canvas.u, canvas.v, boxes.extents, boxes.windows, boxes.axes,
                             np.array([b.eave for b in buildings], np.float64),
                             np.array([b.ridge for b in buildings], np.float64), roofs.astype(np.uint8),
                             (roofs * 0.8).astype(np.uint8), np.array([b.facade for b in buildings], np.uint8),
                             np.array([b.window for b in buildings], np.uint8),
                             np.array([b.storey for b in buildings]).astype(np.float32), int(Material.BUILDING),
                             city.height, city.base, city.material, city.top, city.side, city.window, city.storey,
                             city.normal)


def _paint_solids(canvas: Canvas, boxes: Boxes, heights: np.ndarray, material: Material, tops: np.ndarray,
                  sides: np.ndarray) -> None:
    """Low boxes (hedges, cars) standing on open ground only, painted in list order."""
    city = canvas.city
    painting.paint_solids(canvas.u, canvas.v, boxes.extents, boxes.windows, boxes.axes,
                          np.asarray(heights, np.float64), tops, sides, int(material), city.height, city.base,
                          city.material, city.top, city.side, city.storey, city.normal,
                          np.zeros(city.height.shape, bool))


def paint_hedges(canvas: Canvas, hedges: list[Hedge]) -> None:
    if not hedges:
        return
    colours = np.array([h.colour for h in hedges], np.uint8)
    _paint_solids(canvas, Boxes.of(canvas, np.array([_extent(h) for h in hedges], np.float64)),
                  np.array([h.height for h in hedges], np.float64), Material.HEDGE, colours, colours)


def paint_cars(canvas: Canvas, cars: list[Car]) -> None:
    """Cars over open ground, their sides a little darker than their roofs."""
    if not cars:
        return
    roofs = np.array([c.colour for c in cars], np.int64)
    sides = (roofs * 0.85).astype(np.int64)  # truncated, as int() does
    _paint_solids(canvas, canvas.spots.of(canvas, [c.spot for c in cars]), np.full(len(cars), CAR_HEIGHT),
                  Material.CAR, roofs.astype(np.uint8), sides.astype(np.uint8))


def paint_trees(canvas: Canvas, trees: list[Tree]) -> None:
    """Dome-shaped canopies, in list order, each over whatever is then lower than its underside."""
    if not trees:
        return
    boxes = Boxes.of(canvas, np.array([_tree_extent(t) for t in trees], np.float64))
    colours = np.array([t.colour for t in trees])
    city = canvas.city
    painting.paint_trees(canvas.u, canvas.v, boxes.extents, boxes.windows, boxes.axes,
                         np.array([t.radius for t in trees], np.float64), np.array([t.top for t in trees], np.float64),
                         np.array([t.base for t in trees], np.float64), colours.astype(np.uint8),
                         (colours * 0.8).astype(np.uint8),  # truncated, as int() does
                         int(Material.TREE), city.height, city.base, city.material, city.top, city.side, city.storey,
                         city.normal)


def add_texture(city: CityMap, rng: np.random.Generator) -> None:
    """Per-cell colour noise scaled by material: mottled grass and canopies, even roofs and water."""
    noise = rng.integers(-64, 65, city.material.shape + (1,), dtype=np.int16)
    painting.add_texture(city.material, noise.reshape(city.material.shape), TEXTURE_NOISE, IS_VEGETATION, city.top,
                         city.side)
