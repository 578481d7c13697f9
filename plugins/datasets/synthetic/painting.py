"""The compiled loops that paint a city map: street cover, boxes of each kind of object, texture noise.

Each kernel visits the map cells once, or the cells of each object's window
once, object after object in plan order, and writes the layers of
:class:`CityMap` in place. Painting objects one by one in order is what the
city means (a later object over an earlier one), and compiled it is a single
pass where numpy needed a dozen whole-array passes and a sort to find the
last object over each cell.

Every value is computed with the operations, order and dtypes of the numpy
painter that came before these loops (float64 geometry, rounded to float32
only where it is stored), so the map's bytes are the same
(``tests/test_synthetic_identity.py``). What a kernel needs per object
(window, street-frame axes, colours) and the texture's random draws are
prepared with numpy by :mod:`raster` and passed in.

A cell is inside a box ``(u0, u1, v0, v1)`` when ``u0 <= u < u1`` and
``v0 <= v < v1`` at its centre; ``windows`` hold, per box, the first and end
rows and columns of the map that can hold it, and ``axes`` its unit ``u``
direction (east, north) at the window's middle (``v``'s is that turned a
quarter counter-clockwise). A box cell's ``normal`` is the outward unit
normal of the box side nearest to it (the first of ``u0``, ``u1``, ``v0``,
``v1`` on a tie), found by the helper :func:`outward_normal` that the
kernels painting boxes call.

Kernels address a cell by its flat index ``row * size + col`` in the layers
flattened (channel ``k`` of a colour at ``3 * cell + k``): numba checks each
index of each axis for a negative value, so one flat index is cheaper than
a row, a column and a channel.
"""

from __future__ import annotations

import numpy as np

from .jit import helper, kernel

# Bits of a cell's street cover along one axis (see cover_streets).
ROAD, WALK, CANAL, CENTRE = 1, 2, 4, 8

_GRID = "float64[:, ::1]"
_PLANE = "float32[:, ::1]"
_MATERIAL = "uint8[:, ::1]"
_COLOURS = "uint8[:, :, ::1]"
_NORMALS = "float32[:, :, ::1]"
_BOXES = "float64[:, ::1], int64[:, ::1]"  # boxes, windows


@helper
def outward_normal(lu, lv, length, depth, ue, un):
    """(east, north) outward unit normal of the side of a ``length`` x ``depth`` box nearest to the point at
    ``(lu, lv)`` from its ``(u0, v0)`` corner, the box's ``u`` axis being ``(ue, un)``; the first of the sides
    ``u0``, ``u1``, ``v0``, ``v1`` on a tie."""
    nearest, closest = 0, lu
    if length - lu < closest:
        nearest, closest = 1, length - lu
    if lv < closest:
        nearest, closest = 2, lv
    if depth - lv < closest:
        nearest = 3
    if nearest == 0:
        return -ue, -un
    if nearest == 1:
        return ue, un
    if nearest == 2:
        return un, -ue
    return -un, ue


@kernel(f"void({_GRID}, float64[::1], float64[::1], float64[::1], boolean[::1], boolean[::1], {_MATERIAL})")
def cover_streets(coord, positions, road_reach, walk_reach, canal, wide, cover):
    """Per cell, what the nearest street line of one axis makes of it, as bits of ``cover``.

    ``coord`` is the cell's coordinate across the streets (``u`` for streets
    of constant ``u``), ``positions`` the streets' lines in increasing order.
    The nearest is found as ``np.searchsorted`` does (the first line at or
    beyond the cell, here walked to from the previous cell's, since the
    coordinate changes little from cell to cell) and a comparison with the
    line before (ties go to the earlier line); the cell is ROAD within
    ``road_reach`` of it, WALK within ``walk_reach``, CANAL where that
    street is a canal, CENTRE on a wide road's centre line (under half a metre).
    """
    coord, cover = coord.reshape(-1), cover.reshape(-1)
    count = positions.size
    first = 0
    for cell in range(coord.size):
        x = coord[cell]
        while first > 0 and positions[first - 1] >= x:
            first -= 1
        while first < count and positions[first] < x:
            first += 1
        right = min(max(first, 1), count - 1)
        left = right - 1
        nearest = right if abs(positions[right] - x) < abs(x - positions[left]) else left
        offset = abs(x - positions[nearest])
        bits = CANAL if canal[nearest] else 0
        if offset < walk_reach[nearest]:
            bits |= WALK
        elif offset >= road_reach[nearest]:  # most cells: away from any street
            cover[cell] = bits
            continue
        if offset < road_reach[nearest]:
            bits |= ROAD
            if wide[nearest] and offset < 0.5:
                bits |= CENTRE
        cover[cell] = bits


@kernel(f"void({_MATERIAL}, {_MATERIAL}, {_GRID}, {_GRID}, float64, uint8[::1], uint8[:, ::1], uint8[::1], "
        f"{_MATERIAL}, {_COLOURS}, {_COLOURS}, {_PLANE}, {_PLANE}, boolean[:, ::1])")
def paint_street_cover(cover_u, cover_v, u, v, dash, grounds, colours, marking,
                       material, top, side, height, base, streets):
    """Sidewalks, then canals, then roads (each over the one before), then dashed centre lines.

    ``grounds`` and ``colours`` are the materials and colours of pavement,
    water and road, in that order. A sidewalk is the walk beyond a road, or
    beside a canal; a road crosses a canal as a bridge. A centre line is
    painted where no street of the other axis crosses, on every other
    ``dash`` metres along the street. ``streets`` is set on the roads and
    sidewalks that are not water.
    """
    cover_u, cover_v, u, v = cover_u.reshape(-1), cover_v.reshape(-1), u.reshape(-1), v.reshape(-1)
    material, top, side = material.reshape(-1), top.reshape(-1), side.reshape(-1)
    height, base, streets = height.reshape(-1), base.reshape(-1), streets.reshape(-1)
    for cell in range(material.size):
        a, b = cover_u[cell], cover_v[cell]
        road_a, road_b = (a & ROAD) != 0, (b & ROAD) != 0
        canal_a, canal_b = (a & CANAL) != 0, (b & CANAL) != 0
        walk_a, walk_b = (a & WALK) != 0, (b & WALK) != 0
        layer = -1
        if (road_a and not canal_a) or (road_b and not canal_b):
            layer = 2
        elif (road_a and canal_a) or (road_b and canal_b):
            layer = 1
        elif (walk_a and (canal_a or not road_a)) or (walk_b and (canal_b or not road_b)):
            layer = 0
        if layer >= 0:
            material[cell] = grounds[layer]
            for channel in range(3):
                top[3 * cell + channel] = colours[layer, channel]
                side[3 * cell + channel] = colours[layer, channel]
            height[cell] = 0
            base[cell] = 0
        line_a = (a & CENTRE) != 0 and not canal_a and not road_b and np.floor(v[cell] / dash) % 2 == 0
        line_b = (b & CENTRE) != 0 and not canal_b and not road_a and np.floor(u[cell] / dash) % 2 == 0
        if line_a or line_b:
            for channel in range(3):
                top[3 * cell + channel] = marking[channel]
                side[3 * cell + channel] = marking[channel]
        streets[cell] = (walk_a or walk_b) and material[cell] != grounds[1]


@kernel(f"void({_GRID}, {_GRID}, {_BOXES}, boolean[::1], uint8[::1], uint8[:, ::1], {_MATERIAL}, {_COLOURS}, "
        f"{_COLOURS})")
def paint_areas(u, v, boxes, windows, ellipse, kinds, colours, material, top, side):
    """Ground patches in order, each over whatever is there: its box, or the ellipse inscribed in it."""
    size = u.shape[1]
    u, v, material, top, side = u.reshape(-1), v.reshape(-1), material.reshape(-1), top.reshape(-1), side.reshape(-1)
    for item in range(boxes.shape[0]):
        u0, u1, v0, v1 = boxes[item, 0], boxes[item, 1], boxes[item, 2], boxes[item, 3]
        ru, rv = (u1 - u0) / 2, (v1 - v0) / 2
        oval, kind = ellipse[item], kinds[item]
        red, green, blue = colours[item, 0], colours[item, 1], colours[item, 2]
        for row in range(windows[item, 0], windows[item, 1]):
            for cell in range(row * size + windows[item, 2], row * size + windows[item, 3]):
                x, y = u[cell], v[cell]
                if not (x >= u0 and x < u1 and y >= v0 and y < v1):
                    continue
                if oval:
                    eu, ev = (x - u0 - ru) / ru, (y - v0 - rv) / rv
                    if not eu * eu + ev * ev < 1:
                        continue
                material[cell] = kind
                top[3 * cell], top[3 * cell + 1], top[3 * cell + 2] = red, green, blue
                side[3 * cell], side[3 * cell + 1], side[3 * cell + 2] = red, green, blue


@kernel(f"void({_GRID}, {_GRID}, {_BOXES}, float64[:, ::1], float64[::1], float64[::1], uint8[:, ::1], "
        f"uint8[:, ::1], uint8[:, ::1], uint8[:, ::1], float32[::1], int64, {_PLANE}, {_PLANE}, {_MATERIAL}, "
        f"{_COLOURS}, {_COLOURS}, {_COLOURS}, {_PLANE}, {_NORMALS})")
def paint_buildings(u, v, boxes, windows, axes, eave, ridge, roof, ridge_colour, facade, window_colour, storey, kind,
                    height, base, material, top, side, window, storey_height, normal):
    """Buildings in order, each over whatever is there: flat roofs with a parapet, or gables.

    A gable's ridge runs along the longer side and the roof falls linearly
    to the eaves; the ridge line (or a flat roof's parapet, the outer metre)
    takes ``ridge_colour``. The normal is the outward one of the nearest side.
    """
    size = u.shape[1]
    u, v, height, base, material = u.reshape(-1), v.reshape(-1), height.reshape(-1), base.reshape(-1), \
        material.reshape(-1)
    top, side, window = top.reshape(-1), side.reshape(-1), window.reshape(-1)
    storey_height, normal = storey_height.reshape(-1), normal.reshape(-1)
    for item in range(boxes.shape[0]):
        u0, u1, v0, v1 = boxes[item, 0], boxes[item, 1], boxes[item, 2], boxes[item, 3]
        length, depth = u1 - u0, v1 - v0
        along_u = length >= depth
        half = depth / 2 if along_u else length / 2
        low, high = eave[item], ridge[item]
        gable = high > low
        ue, un = axes[item, 0], axes[item, 1]
        for row in range(windows[item, 0], windows[item, 1]):
            for cell in range(row * size + windows[item, 2], row * size + windows[item, 3]):
                x, y = u[cell], v[cell]
                if not (x >= u0 and x < u1 and y >= v0 and y < v1):
                    continue
                lu, lv = x - u0, y - v0
                if gable:
                    off_ridge = abs((lv if along_u else lu) - half)
                    height[cell] = low + (high - low) * (1 - off_ridge / half)
                    ridge_line = off_ridge < 0.5
                else:
                    height[cell] = low
                    ridge_line = min(min(lu, length - lu), min(lv, depth - lv)) < 1.0
                base[cell] = 0
                material[cell] = kind
                for channel in range(3):
                    top[3 * cell + channel] = ridge_colour[item, channel] if ridge_line else roof[item, channel]
                    side[3 * cell + channel] = facade[item, channel]
                    window[3 * cell + channel] = window_colour[item, channel]
                storey_height[cell] = storey[item]
                normal[2 * cell], normal[2 * cell + 1] = outward_normal(lu, lv, length, depth, ue, un)


@kernel(f"void({_GRID}, {_GRID}, {_BOXES}, float64[:, ::1], float64[::1], uint8[:, ::1], uint8[:, ::1], int64, "
        f"{_PLANE}, {_PLANE}, {_MATERIAL}, {_COLOURS}, {_COLOURS}, {_PLANE}, {_NORMALS}, boolean[:, ::1])")
def paint_solids(u, v, boxes, windows, axes, heights, tops, sides, kind,
                 height, base, material, top, side, storey_height, normal, taken):
    """Low boxes (hedges, cars) in order, each on the open ground (height 0) that no box before it took.

    ``taken`` is all False on entry; it marks the cells taken by these boxes.
    """
    size = u.shape[1]
    u, v, height, base, material = u.reshape(-1), v.reshape(-1), height.reshape(-1), base.reshape(-1), \
        material.reshape(-1)
    top, side, storey_height, normal, taken = top.reshape(-1), side.reshape(-1), storey_height.reshape(-1), \
        normal.reshape(-1), taken.reshape(-1)
    for item in range(boxes.shape[0]):
        u0, u1, v0, v1 = boxes[item, 0], boxes[item, 1], boxes[item, 2], boxes[item, 3]
        length, depth = u1 - u0, v1 - v0
        ue, un = axes[item, 0], axes[item, 1]
        for row in range(windows[item, 0], windows[item, 1]):
            for cell in range(row * size + windows[item, 2], row * size + windows[item, 3]):
                x, y = u[cell], v[cell]
                if not (x >= u0 and x < u1 and y >= v0 and y < v1) or taken[cell] or height[cell] != 0:
                    continue
                taken[cell] = True
                height[cell] = heights[item]
                base[cell] = 0
                material[cell] = kind
                for channel in range(3):
                    top[3 * cell + channel] = tops[item, channel]
                    side[3 * cell + channel] = sides[item, channel]
                storey_height[cell] = 0
                lu, lv = x - u0, y - v0
                normal[2 * cell], normal[2 * cell + 1] = outward_normal(lu, lv, length, depth, ue, un)


@kernel(f"void({_GRID}, {_GRID}, {_BOXES}, float64[:, ::1], float64[::1], float64[::1], float64[::1], "
        f"uint8[:, ::1], uint8[:, ::1], int64, {_PLANE}, {_PLANE}, {_MATERIAL}, {_COLOURS}, {_COLOURS}, {_PLANE}, "
        f"{_NORMALS})")
def paint_trees(u, v, boxes, windows, axes, radius, crown, underside, colours, shades, kind,
                height, base, material, top, side, storey_height, normal):
    """Dome-shaped canopies in order, each over whatever is then no higher than its underside.

    A canopy of ``radius`` spans the disc inscribed in its box; at ``rho2``,
    the squared distance from its centre over the squared radius, its top
    is lowered by 0.4 and its underside raised by 0.3 of its thickness
    times ``rho2``. The normal points away from the trunk (zero above it).
    """
    size = u.shape[1]
    u, v, height, base, material = u.reshape(-1), v.reshape(-1), height.reshape(-1), base.reshape(-1), \
        material.reshape(-1)
    top, side, storey_height, normal = top.reshape(-1), side.reshape(-1), storey_height.reshape(-1), \
        normal.reshape(-1)
    for item in range(boxes.shape[0]):
        u0, u1, v0, v1 = boxes[item, 0], boxes[item, 1], boxes[item, 2], boxes[item, 3]
        r, highest, lowest = radius[item], crown[item], underside[item]
        thickness = highest - lowest
        ue, un = axes[item, 0], axes[item, 1]
        ve, vn = -un, ue
        for row in range(windows[item, 0], windows[item, 1]):
            for cell in range(row * size + windows[item, 2], row * size + windows[item, 3]):
                x, y = u[cell], v[cell]
                if not (x >= u0 and x < u1 and y >= v0 and y < v1):
                    continue
                du, dv = (x - u0) - r, (y - v0) - r
                rho2 = (du * du + dv * dv) / (r * r)
                if not rho2 < 1:
                    continue
                canopy_base = lowest + 0.3 * thickness * rho2
                if not height[cell] <= canopy_base:
                    continue
                height[cell] = highest - 0.4 * thickness * rho2
                base[cell] = canopy_base
                material[cell] = kind
                for channel in range(3):
                    top[3 * cell + channel] = colours[item, channel]
                    side[3 * cell + channel] = shades[item, channel]
                storey_height[cell] = 0
                east, north = du * ue + dv * ve, du * un + dv * vn
                length = np.sqrt(east * east + north * north)
                if length > 0:
                    east, north = east / max(length, 1e-9), north / max(length, 1e-9)
                else:
                    east, north = 0.0, 0.0
                normal[2 * cell], normal[2 * cell + 1] = east, north


@kernel(f"void({_MATERIAL}, int16[:, ::1], int16[::1], boolean[::1], {_COLOURS}, {_COLOURS})")
def add_texture(material, noise, amplitude, vegetation, top, side):
    """Add ``noise * amplitude // 64`` of the cell's material to its top colour (and side, on vegetation).

    ``noise`` is drawn in ``[-64, 64]``; the sums are clipped to ``[0, 255]``.
    """
    material, noise, top, side = material.reshape(-1), noise.reshape(-1), top.reshape(-1), side.reshape(-1)
    for cell in range(material.size):
        kind = material[cell]
        shift = noise[cell] * amplitude[kind] // 64
        for channel in range(3):
            top[3 * cell + channel] = min(max(top[3 * cell + channel] + shift, 0), 255)
            if vegetation[kind]:
                side[3 * cell + channel] = min(max(side[3 * cell + channel] + shift, 0), 255)
