"""Rasterise a city plan into a :class:`CityMap`: streets, areas, buildings, hedges, trees, cars.

Each object is painted inside the window of map cells that can hold it, by
testing the street-frame coordinates ``(u, v)`` of those cells, so objects
follow rotated and warped streets exactly as the streets do.
"""

from __future__ import annotations

import math

import numpy as np

from .citymap import CityMap
from .frame import StreetFrame
from .materials import TEXTURE_NOISE, VEGETATION, Material
from .plan import Area, Building, Car, CityPlan, Hedge, Street, Tree

Window = tuple[slice, slice]

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

    def box(self, u0: float, u1: float, v0: float, v1: float,
            window: Window | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Mask and local coordinates of the cells of ``window`` inside a street-frame box; None if none."""
        if window is None:
            return None
        u, v = self.u[window], self.v[window]
        mask = (u >= u0) & (u < u1) & (v >= v0) & (v < v1)
        if not mask.any():
            return None
        return mask, u - u0, v - v0

    def axes(self, window: Window) -> tuple[tuple[float, float], tuple[float, float]]:
        """Unit (east, north) directions of increasing ``u`` and ``v`` at the middle of a window.

        From the gradient of the cells' ``u``, so it follows warped streets;
        ``v``'s direction is ``u``'s turned a quarter counter-clockwise.
        """
        rows, cols = window
        r = min(max((rows.start + rows.stop) // 2, 1), self.city.size - 2)
        c = min(max((cols.start + cols.stop) // 2, 1), self.city.size - 2)
        east = float(self.u[r, c + 1] - self.u[r, c - 1])
        north = float(self.u[r - 1, c] - self.u[r + 1, c])  # row numbers grow southwards
        norm = math.hypot(east, north)
        east, north = east / norm, north / norm
        return (east, north), (-north, east)

    def box_normals(self, window: Window, lu: np.ndarray, lv: np.ndarray, length: float,
                    depth: float) -> np.ndarray:
        """Outward normal (east, north) of the nearest side of a box, per cell."""
        (ue, un), (ve, vn) = self.axes(window)
        sides = np.stack([lu, length - lu, lv, depth - lv])
        outward = np.array([[-ue, -un], [ue, un], [-ve, -vn], [ve, vn]], np.float32)
        return outward[np.argmin(sides, axis=0)]


def rasterise(plan: CityPlan, texture: np.random.Generator) -> tuple[CityMap, Canvas, np.ndarray]:
    """The static city (everything but the cars), its canvas for painting cars later, and its street cells.

    Street cells are the roads and sidewalks of the street network (not
    canals, plazas or parking lots): where street-level cameras stand.
    """
    city = CityMap.blank(plan.frame.size, Material.GRASS, plan.palette.grass)
    canvas = Canvas(city, plan.frame)
    for area, window in zip(plan.areas, canvas.frame.windows([_extent(a) for a in plan.areas])):
        paint_area(canvas, area, window)
    streets = paint_streets(canvas, plan)
    for building, window in zip(plan.buildings, canvas.frame.windows([_extent(b) for b in plan.buildings])):
        paint_building(canvas, building, window)
    for hedge, window in zip(plan.hedges, canvas.frame.windows([_extent(h) for h in plan.hedges])):
        paint_hedge(canvas, hedge, window)
    for tree, window in zip(plan.trees, canvas.frame.windows([_tree_extent(t) for t in plan.trees])):
        paint_tree(canvas, tree, window)
    add_texture(city, texture)
    return city, canvas, streets


def with_cars(canvas: Canvas, cars: list[Car]) -> CityMap:
    """A copy of the canvas's city with ``cars`` parked or driving on its open ground."""
    painter = Canvas(canvas.city.copy(), canvas.frame, (canvas.u, canvas.v))
    for car, window in zip(cars, canvas.frame.windows([_car_extent(c) for c in cars])):
        paint_car(painter, car, window)
    return painter.city


def _extent(item: Area | Building | Hedge) -> tuple[float, float, float, float]:
    return item.u0, item.u1, item.v0, item.v1


def _tree_extent(tree: Tree) -> tuple[float, float, float, float]:
    return tree.u - tree.radius, tree.u + tree.radius, tree.v - tree.radius, tree.v + tree.radius


def _car_extent(car: Car) -> tuple[float, float, float, float]:
    spot = car.spot
    half_u, half_v = (CAR_LENGTH / 2, CAR_WIDTH / 2) if spot.along_u else (CAR_WIDTH / 2, CAR_LENGTH / 2)
    return spot.u - half_u, spot.u + half_u, spot.v - half_v, spot.v + half_v


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
        dash = np.floor(other / DASH_METRES) % 2 == 0
        marked = road & ~canal & ~crossing & (width >= 9) & (np.abs(offset) < 0.5) & dash
        city.top[marked] = MARKING
        city.side[marked] = MARKING
    return (masks["u"][1] | masks["v"][1]) & (city.material != Material.WATER)


def _paint_ground(city: CityMap, mask: np.ndarray, material: Material, colour) -> None:
    city.material[mask] = material
    city.top[mask] = colour
    city.side[mask] = colour
    city.height[mask] = 0
    city.base[mask] = 0


def paint_area(canvas: Canvas, area: Area, window: Window | None) -> None:
    found = canvas.box(*_extent(area), window)
    if found is None:
        return
    mask, lu, lv = found
    if area.ellipse:
        ru, rv = (area.u1 - area.u0) / 2, (area.v1 - area.v0) / 2
        mask &= ((lu - ru) / ru) ** 2 + ((lv - rv) / rv) ** 2 < 1
    city = canvas.city
    city.material[window][mask] = area.material
    city.top[window][mask] = area.colour
    city.side[window][mask] = area.colour


def paint_building(canvas: Canvas, building: Building, window: Window | None) -> None:
    b = building
    found = canvas.box(*_extent(b), window)
    if found is None:
        return
    mask, lu, lv = found
    length, depth = b.u1 - b.u0, b.v1 - b.v0
    if b.ridge > b.eave:
        # The ridge runs along the longer side; the roof falls linearly to the eaves.
        across, half = (lv, depth / 2) if length >= depth else (lu, length / 2)
        height = b.eave + (b.ridge - b.eave) * (1 - np.abs(across - half) / half)
        ridge_line = np.abs(across - half) < 0.5
    else:
        height = np.full(lu.shape, b.eave)
        ridge_line = np.minimum(np.minimum(lu, length - lu), np.minimum(lv, depth - lv)) < 1.0  # parapet
    roof = np.empty(lu.shape + (3,), np.uint8)
    roof[:] = b.roof
    roof[ridge_line] = (np.array(b.roof) * 0.8).astype(np.uint8)
    normals = canvas.box_normals(window, lu, lv, length, depth)
    city = canvas.city
    city.height[window][mask] = height[mask]
    city.base[window][mask] = 0
    city.material[window][mask] = Material.BUILDING
    city.top[window][mask] = roof[mask]
    city.side[window][mask] = b.facade
    city.window[window][mask] = b.window
    city.storey[window][mask] = b.storey
    city.normal[window][mask] = normals[mask]


def _paint_solid(canvas: Canvas, extent: tuple[float, float, float, float], window: Window | None,
                 height: float, material: Material, top, side) -> None:
    """A low box (hedge, car) standing on open ground only."""
    found = canvas.box(*extent, window)
    if found is None:
        return
    mask, lu, lv = found
    city = canvas.city
    mask &= city.height[window] == 0
    u0, u1, v0, v1 = extent
    normals = canvas.box_normals(window, lu, lv, u1 - u0, v1 - v0)
    city.height[window][mask] = height
    city.base[window][mask] = 0
    city.material[window][mask] = material
    city.top[window][mask] = top
    city.side[window][mask] = side
    city.storey[window][mask] = 0
    city.normal[window][mask] = normals[mask]


def paint_hedge(canvas: Canvas, hedge: Hedge, window: Window | None) -> None:
    _paint_solid(canvas, _extent(hedge), window, hedge.height, Material.HEDGE, hedge.colour, hedge.colour)


def paint_car(canvas: Canvas, car: Car, window: Window | None) -> None:
    body = tuple(int(c * 0.85) for c in car.colour)
    _paint_solid(canvas, _car_extent(car), window, CAR_HEIGHT, Material.CAR, car.colour, body)


def paint_tree(canvas: Canvas, tree: Tree, window: Window | None) -> None:
    """A dome-shaped canopy over whatever is lower than its underside."""
    r = tree.radius
    found = canvas.box(*_tree_extent(tree), window)
    if found is None:
        return
    mask, lu, lv = found
    du, dv = lu - r, lv - r
    rho2 = (du * du + dv * dv) / (r * r)
    depth = tree.top - tree.base
    top = tree.top - 0.4 * depth * rho2
    base = tree.base + 0.3 * depth * rho2
    city = canvas.city
    mask &= (rho2 < 1) & (city.height[window] <= base)
    (ue, un), (ve, vn) = canvas.axes(window)
    radial = np.stack([du * ue + dv * ve, du * un + dv * vn], axis=-1)
    length = np.sqrt((radial * radial).sum(-1, keepdims=True))
    radial = np.where(length > 0, radial / np.maximum(length, 1e-9), 0).astype(np.float32)
    shade = tuple(int(c * 0.8) for c in tree.colour)
    city.height[window][mask] = top[mask]
    city.base[window][mask] = base[mask]
    city.material[window][mask] = Material.TREE
    city.top[window][mask] = tree.colour
    city.side[window][mask] = shade
    city.storey[window][mask] = 0
    city.normal[window][mask] = radial[mask]


def add_texture(city: CityMap, rng: np.random.Generator) -> None:
    """Per-cell colour noise scaled by material: mottled grass and canopies, even roofs and water."""
    amplitude = TEXTURE_NOISE[city.material][..., None]
    noise = rng.integers(-64, 65, city.material.shape + (1,), dtype=np.int16) * amplitude // 64
    city.top = np.clip(city.top.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    vegetation = np.isin(city.material, VEGETATION)[..., None]
    textured_side = np.clip(city.side.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    city.side = np.where(vegetation, textured_side, city.side)
