"""Rasterise a city plan into a :class:`CityMap`: streets, areas, buildings, hedges, trees, cars.

Each object is painted inside the window of map cells that can hold it, by
testing the street-frame coordinates ``(u, v)`` of those cells, so objects
follow rotated and warped streets exactly as the streets do. All objects of
one kind are painted in one vectorised pass (:class:`BoxCells`) that leaves
exactly what painting them one by one in plan order would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .citymap import CityMap
from .frame import StreetFrame
from .materials import IS_VEGETATION, TEXTURE_NOISE, Material
from .plan import Area, Building, Car, CityPlan, Hedge, Street, Tree

MARKING = (228, 228, 218)
DASH_METRES = 6.0
CAR_LENGTH, CAR_WIDTH, CAR_HEIGHT = 4.6, 1.9, 1.5


class Canvas:
    """A map being painted, with the street coordinates of every cell centre."""

    def __init__(self, city: CityMap, frame: StreetFrame, uv: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.city = city
        self.frame = frame
        full = slice(0, city.size)
        self.u, self.v = uv if uv is not None else frame.cell_uv(full, full)


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
    painter = Canvas(canvas.city.copy(), canvas.frame, (canvas.u, canvas.v))
    paint_cars(painter, cars)
    return painter.city


def _extent(item: Area | Building | Hedge) -> tuple[float, float, float, float]:
    return item.u0, item.u1, item.v0, item.v1


def _tree_extent(tree: Tree) -> tuple[float, float, float, float]:
    return tree.u - tree.radius, tree.u + tree.radius, tree.v - tree.radius, tree.v + tree.radius


def _car_extents(cars: list[Car]) -> np.ndarray:
    """``(u0, u1, v0, v1)`` per car, its long side along ``u`` or ``v`` as its spot says."""
    u, v = np.array([c.spot.u for c in cars], np.float64), np.array([c.spot.v for c in cars], np.float64)
    along_u = np.array([c.spot.along_u for c in cars], bool)
    half_u = np.where(along_u, CAR_LENGTH / 2, CAR_WIDTH / 2)
    half_v = np.where(along_u, CAR_WIDTH / 2, CAR_LENGTH / 2)
    return np.stack([u - half_u, u + half_u, v - half_v, v + half_v], axis=1)


def _street_distance(coord: np.ndarray, streets: list[Street]) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance from each coordinate to the nearest street line, and that street's index."""
    positions = np.array([s.position for s in streets])
    right = np.clip(np.searchsorted(positions, coord), 1, len(positions) - 1)
    left = right - 1
    use_right = np.abs(positions[right] - coord) < np.abs(coord - positions[left])
    nearest = np.where(use_right, right, left)
    return coord - positions[nearest], nearest


def paint_streets(canvas: Canvas, plan: CityPlan) -> np.ndarray:
    """Sidewalks, canals, roads and dashed centre lines, in that order (roads cross canals as bridges).

    Returns the cells of roads and sidewalks.
    """
    city = canvas.city
    masks = {}
    for axis, coord, other in (("u", canvas.u, canvas.v), ("v", canvas.v, canvas.u)):
        streets = [s for s in plan.streets if s.axis == axis]
        offset, index = _street_distance(coord, streets)
        width = np.array([s.width for s in streets])[index]
        walk = np.array([s.sidewalk for s in streets])[index]
        canal = np.array([s.canal for s in streets])[index]
        masks[axis] = (np.abs(offset) < width / 2, np.abs(offset) < width / 2 + walk, canal, offset, width, other)
    for road, walk, canal, *_ in masks.values():
        _paint_ground(city, walk & ~road | walk & canal, Material.PAVEMENT, plan.palette.pavement)
    for road, _, canal, *_ in masks.values():
        _paint_ground(city, road & canal, Material.WATER, plan.palette.water)
    for road, _, canal, *_ in masks.values():
        _paint_ground(city, road & ~canal, Material.ROAD, plan.palette.road)
    for axis, (road, _, canal, offset, width, other) in masks.items():
        crossing = masks["v" if axis == "u" else "u"][0]
        centre_line = np.flatnonzero(road & ~canal & ~crossing & (width >= 9) & (np.abs(offset) < 0.5))
        dash = np.floor(other.reshape(-1).take(centre_line) / DASH_METRES) % 2 == 0  # only where a line can be
        marked = np.divmod(centre_line[dash], city.size)
        city.top[marked] = MARKING
        city.side[marked] = MARKING
    return (masks["u"][1] | masks["v"][1]) & (city.material != Material.WATER)


def _paint_ground(city: CityMap, mask: np.ndarray, material: Material, colour) -> None:
    mask = np.nonzero(mask)  # the cells once, instead of a scan of the whole mask per layer
    city.material[mask] = material
    city.top[mask] = colour
    city.side[mask] = colour
    city.height[mask] = 0
    city.base[mask] = 0


def paint_areas(canvas: Canvas, areas: list[Area]) -> None:
    """Ground patches in list order, each over whatever is there (the last patch over a cell wins)."""
    if not areas:
        return
    extents = np.array([_extent(a) for a in areas], np.float64)
    cells = BoxCells.of(canvas, extents)
    ru, rv = ((extents[:, 1] - extents[:, 0]) / 2)[cells.item], ((extents[:, 3] - extents[:, 2]) / 2)[cells.item]
    ellipse = np.array([a.ellipse for a in areas])[cells.item]
    cells = cells.select(~ellipse | (((cells.lu - ru) / ru) ** 2 + ((cells.lv - rv) / rv) ** 2 < 1)).last_per_cell()
    at, item = (cells.row, cells.col), cells.item
    colours = np.array([a.colour for a in areas], np.uint8)[item]
    canvas.city.material[at] = np.array([a.material for a in areas], np.uint8)[item]
    canvas.city.top[at] = colours
    canvas.city.side[at] = colours


def paint_buildings(canvas: Canvas, buildings: list[Building]) -> None:
    """Buildings in list order, each over whatever is there: flat roofs with a parapet, or gables.

    A gable's ridge runs along the longer side and the roof falls linearly to the eaves.
    """
    if not buildings:
        return
    extents = np.array([_extent(b) for b in buildings], np.float64)
    cells = BoxCells.of(canvas, extents).last_per_cell()
    item, lu, lv = cells.item, cells.lu, cells.lv
    eave, ridge = np.array([b.eave for b in buildings])[item], np.array([b.ridge for b in buildings])[item]
    length, depth = (extents[:, 1] - extents[:, 0])[item], (extents[:, 3] - extents[:, 2])[item]
    along_u = length >= depth
    across, half = np.where(along_u, lv, lu), np.where(along_u, depth / 2, length / 2)
    gable = ridge > eave
    height = np.where(gable, eave + (ridge - eave) * (1 - np.abs(across - half) / half), eave)
    parapet = np.minimum(np.minimum(lu, length - lu), np.minimum(lv, depth - lv)) < 1.0
    ridge_line = np.where(gable, np.abs(across - half) < 0.5, parapet)
    roofs = np.array([b.roof for b in buildings], np.uint8)
    dark = (np.array([b.roof for b in buildings]) * 0.8).astype(np.uint8)
    city, at = canvas.city, (cells.row, cells.col)
    city.height[at] = height
    city.base[at] = 0
    city.material[at] = Material.BUILDING
    city.top[at] = np.where(ridge_line[:, None], dark[item], roofs[item])
    city.side[at] = np.array([b.facade for b in buildings], np.uint8)[item]
    city.window[at] = np.array([b.window for b in buildings], np.uint8)[item]
    city.storey[at] = np.array([b.storey for b in buildings])[item]
    city.normal[at] = _outward_normals(canvas, extents, cells)


@dataclass
class BoxCells:
    """The cells inside some street-frame boxes ``(u0, u1, v0, v1)``, box after box.

    Only the cells of each box's window (:meth:`StreetFrame.window_bounds`)
    are tested. ``item`` is the box, ``row``/``col`` the cell and
    ``lu``/``lv`` its coordinates relative to the box's ``(u0, v0)`` corner.
    Painting all boxes at once this way replaces a Python loop over objects.
    """

    item: np.ndarray
    row: np.ndarray
    col: np.ndarray
    lu: np.ndarray
    lv: np.ndarray
    bounds: tuple[np.ndarray, ...]  # per box: its window's first and end rows and columns

    @classmethod
    def of(cls, canvas: Canvas, boxes: np.ndarray) -> "BoxCells":
        r0, r1, c0, c1 = canvas.frame.window_bounds(boxes)
        size = canvas.city.size
        heights, widths = np.maximum(r1 - r0, 0), np.maximum(c1 - c0, 0)
        # One run of cells per window row, then one entry per cell of a run: flat
        # indices without a division per cell, and 1-D takes instead of 2-D indexing.
        run_item = np.repeat(np.arange(len(boxes)), heights)
        run_row = r0[run_item] + _ramp(heights)
        run_width = widths[run_item]
        flat = np.repeat(run_row * size + c0[run_item], run_width) + _ramp(run_width)
        item = np.repeat(run_item, run_width)
        u, v = canvas.u.take(flat), canvas.v.take(flat)
        u0, u1, v0, v1 = (np.ascontiguousarray(boxes[:, k]).take(item) for k in range(4))
        inside = (u >= u0) & (u < u1) & (v >= v0) & (v < v1)
        flat = flat[inside]
        row = flat // size
        return cls(item[inside], row, flat - row * size, (u - u0)[inside], (v - v0)[inside], (r0, r1, c0, c1))

    def select(self, keep: np.ndarray) -> "BoxCells":
        return BoxCells(self.item[keep], self.row[keep], self.col[keep], self.lu[keep], self.lv[keep], self.bounds)

    def first_per_cell(self) -> "BoxCells":
        """The entry of the earliest box over each cell."""
        _, first = np.unique(self.row * (self.col.max(initial=0) + 1) + self.col, return_index=True)
        return self.select(first)

    def last_per_cell(self) -> "BoxCells":
        """The entry of the latest box over each cell: what painting the boxes in order leaves."""
        reverse = BoxCells(*(a[::-1] for a in (self.item, self.row, self.col, self.lu, self.lv)), self.bounds)
        return reverse.first_per_cell()


def _ramp(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., n - 1`` for each ``n`` of ``counts``, one after another."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _item_axes(canvas: Canvas, cells: BoxCells) -> tuple[np.ndarray, ...]:
    """Unit (east, north) directions ``(ue, un)`` of increasing ``u`` and ``(ve, vn)`` of ``v``, per entry.

    From the gradient of ``u`` at the middle of the entry's box's window, so
    it follows warped streets; ``v``'s direction is ``u``'s turned a quarter
    counter-clockwise.
    """
    r0, r1, c0, c1 = cells.bounds
    last = canvas.city.size - 2
    r, c = np.clip((r0 + r1) // 2, 1, last), np.clip((c0 + c1) // 2, 1, last)
    east = canvas.u[r, c + 1] - canvas.u[r, c - 1]
    north = canvas.u[r - 1, c] - canvas.u[r + 1, c]  # row numbers grow southwards
    # math.hypot, as the generator always used: numpy's hypot need not round the same way.
    norm = np.array([math.hypot(e, n) for e, n in zip(east.tolist(), north.tolist())])
    east, north = (east / norm)[cells.item], (north / norm)[cells.item]
    return east, north, -north, east


def _paint_solids(canvas: Canvas, boxes: list[tuple[float, float, float, float]] | np.ndarray,
                  heights: list[float] | np.ndarray, material: Material, tops: list | np.ndarray,
                  sides: list | np.ndarray) -> None:
    """Low boxes (hedges, cars) standing on open ground only, painted in list order.

    A painted solid is never open ground again, so the first box over an
    open cell takes it: one pass decides every cell.
    """
    if not len(boxes):
        return
    extents = np.array(boxes, np.float64).reshape(-1, 4)
    city = canvas.city
    cells = BoxCells.of(canvas, extents)
    cells = cells.select(city.height[cells.row, cells.col] == 0).first_per_cell()
    item = cells.item
    at = (cells.row, cells.col)
    city.height[at] = np.array(heights, np.float64)[item]
    city.base[at] = 0
    city.material[at] = material
    city.top[at] = np.array(tops, np.uint8).reshape(-1, 3)[item]
    city.side[at] = np.array(sides, np.uint8).reshape(-1, 3)[item]
    city.storey[at] = 0
    city.normal[at] = _outward_normals(canvas, extents, cells)


def _outward_normals(canvas: Canvas, extents: np.ndarray, cells: BoxCells) -> np.ndarray:
    """Outward unit normal (east, north) of the nearest side of its box, per cell."""
    item, lu, lv = cells.item, cells.lu, cells.lv
    ue, un, ve, vn = _item_axes(canvas, cells)
    length, depth = (extents[:, 1] - extents[:, 0])[item], (extents[:, 3] - extents[:, 2])[item]
    nearest = np.argmin(np.stack([lu, length - lu, lv, depth - lv]), axis=0)
    outward = np.stack([np.stack([-ue, -un], -1), np.stack([ue, un], -1),
                        np.stack([-ve, -vn], -1), np.stack([ve, vn], -1)], 1).astype(np.float32)
    return outward[np.arange(len(item)), nearest]


def paint_hedges(canvas: Canvas, hedges: list[Hedge]) -> None:
    _paint_solids(canvas, [_extent(h) for h in hedges], [h.height for h in hedges], Material.HEDGE,
                  [h.colour for h in hedges], [h.colour for h in hedges])


def paint_cars(canvas: Canvas, cars: list[Car]) -> None:
    """Cars over open ground, their sides a little darker than their roofs."""
    if not cars:
        return
    roofs = np.array([c.colour for c in cars], np.int64)
    sides = (roofs * 0.85).astype(np.int64)  # truncated, as int() does
    _paint_solids(canvas, _car_extents(cars), np.full(len(cars), CAR_HEIGHT), Material.CAR, roofs, sides)


def paint_trees(canvas: Canvas, trees: list[Tree]) -> None:
    """Dome-shaped canopies, in list order, each over whatever is then lower than its underside.

    A canopy may stand over an earlier one, so the cells are painted in
    rounds: round ``k`` paints, in every cell, the ``k``-th tree over it.
    """
    if not trees:
        return
    extents = np.array([_tree_extent(t) for t in trees], np.float64)
    city = canvas.city
    cells = BoxCells.of(canvas, extents)
    radius = np.array([t.radius for t in trees])[cells.item]
    crown, underside = np.array([t.top for t in trees]), np.array([t.base for t in trees])
    thickness = (crown - underside)[cells.item]
    du, dv = cells.lu - radius, cells.lv - radius
    rho2 = (du * du + dv * dv) / (radius * radius)
    top = crown[cells.item] - 0.4 * thickness * rho2
    base = underside[cells.item] + 0.3 * thickness * rho2
    within = rho2 < 1
    cells, du, dv, top, base = cells.select(within), du[within], dv[within], top[within], base[within]
    item = cells.item
    ue, un, ve, vn = _item_axes(canvas, cells)
    radial = np.stack([du * ue + dv * ve, du * un + dv * vn], axis=-1)
    length = np.sqrt((radial * radial).sum(-1, keepdims=True))
    radial = np.where(length > 0, radial / np.maximum(length, 1e-9), 0).astype(np.float32)
    colours = np.array([t.colour for t in trees], np.uint8)
    shades = np.array([tuple(int(c * 0.8) for c in t.colour) for t in trees], np.uint8)
    # Entries are in tree order; a stable sort by cell keeps that order within each cell.
    flat = cells.row * city.size + cells.col
    order = np.argsort(flat, kind="stable")
    starts = np.r_[True, flat[order][1:] != flat[order][:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - run_start
    for k in range(int(rank.max(initial=-1)) + 1):
        turn = np.flatnonzero(rank == k)
        at = (cells.row[turn], cells.col[turn])
        turn = turn[city.height[at] <= base[turn]]
        at = (cells.row[turn], cells.col[turn])
        city.height[at] = top[turn]
        city.base[at] = base[turn]
        city.material[at] = Material.TREE
        city.top[at] = colours[item[turn]]
        city.side[at] = shades[item[turn]]
        city.storey[at] = 0
        city.normal[at] = radial[turn]


def add_texture(city: CityMap, rng: np.random.Generator) -> None:
    """Per-cell colour noise scaled by material: mottled grass and canopies, even roofs and water."""
    amplitude = TEXTURE_NOISE[city.material][..., None]
    noise = rng.integers(-64, 65, city.material.shape + (1,), dtype=np.int16) * amplitude // 64
    city.top = np.clip(city.top.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    vegetation = IS_VEGETATION[city.material][..., None]
    textured_side = np.clip(city.side.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    city.side = np.where(vegetation, textured_side, city.side)
