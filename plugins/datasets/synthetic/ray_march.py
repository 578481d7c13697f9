"""Compiled kernels of the panorama renderer: march each column's ray, refine its hits, colour its pixels.

:mod:`.panorama` defines what a pixel shows; these loops compute it one
pixel at a time, with numpy's arithmetic op for op (float32 where numpy
computes in float32, float64 where it does), so that the bytes are those of
the whole-array formulas they replace. Transcendental values (ray
directions, slopes, the sky's colour per row) come in precomputed by numpy.

Arrays are indexed ``[camera, column, row]`` per pixel; the map's matter is
the flat ``height`` and ``base`` of :attr:`LitCity.matter`, whose last entry
is the empty cell that stands for everything beyond the map. A point
``(x, y)`` lies in cell ``floor(size - y) * size + floor(x)`` when both
floors lie in ``[0, size)``.
"""

from __future__ import annotations

import numpy as np

from .jit import helper, kernel


@kernel("void(boolean[::1], float32[::1], float32[::1], int64, float64[:, ::1], float64[::1], float64[::1],"
        " float64[::1], float64[:, ::1], int64[::1], int64[::1], int32[:, :, ::1])")
def march_rays(occupied, height, base, size, cameras, east, north, distances, ray_z, expiring_rows, expiring_after,
               first):
    """Per pixel, the first sample at which its ray is inside matter, or -1: ``first (B, W, H)``.

    A column's rays share their sample points ``camera + distance * (east,
    north)``; row ``h``'s ray is at height ``ray_z[k, h]`` at sample ``k``. It
    is inside a cell's matter when ``base <= ray_z <= height`` and above the
    ground, compared in float64. ``ray_z[k]`` falls as ``h`` grows (rows look
    further down), so the rows inside one sample's matter are a contiguous
    range, found by bisection (unless every unresolved ray passes over or
    under the matter); rows already hit are skipped through ``skip``, a chain
    of next-unresolved-row links. Row ``expiring_rows[i]`` can be hit
    no later than sample ``expiring_after[i]`` (after that its ray is under
    the ground or above the tallest matter; -1 if never), in rising order, so
    a column's march ends as soon as no unresolved row can still be hit.
    Most samples fall on empty cells: ``occupied`` (``height > 0`` per cell, a
    quarter of the bytes, so it stays in cache) tells them apart before the
    heights are read.
    """
    rows = ray_z.shape[1]
    skip = np.empty(rows + 1, np.int64)  # skip[h] == h: row h unresolved; else a later row to look at
    outside = size * size
    for camera in range(cameras.shape[0]):
        cx, cy = cameras[camera, 0], cameras[camera, 1]
        for column in range(east.shape[0]):
            de, dn = east[column], north[column]
            for h in range(rows + 1):
                skip[h] = h
            first[camera, column, :] = -1
            unresolved, expiring = rows, 0
            lowest, highest = 0, rows - 1  # the unresolved rows lie between these
            for k in range(distances.shape[0]):
                while expiring < rows and expiring_after[expiring] < k:
                    h = expiring_rows[expiring]
                    if skip[h] == h:
                        skip[h] = h + 1
                        unresolved -= 1
                    expiring += 1
                if unresolved == 0:
                    break
                x = cx + distances[k] * de
                south = size - (cy + distances[k] * dn)
                cell = outside
                if x >= 0 and x < size and south >= 0 and south < size:
                    cell = int(south) * size + int(x)  # truncation is floor here: both are >= 0
                if not occupied[cell]:
                    continue  # a ray above the ground is above this cell's matter
                top, bottom = np.float64(height[cell]), np.float64(base[cell])
                while skip[lowest] != lowest:
                    lowest += 1
                while highest > lowest and skip[highest] != highest:
                    highest -= 1
                if ray_z[k, highest] > top or ray_z[k, lowest] < bottom or ray_z[k, lowest] <= 0:
                    continue  # every unresolved ray passes over the matter, or every one under it
                lo, hi = 0, rows  # the first row whose ray is not above the matter's top
                while lo < hi:
                    middle = (lo + hi) // 2
                    if ray_z[k, middle] <= top:
                        hi = middle
                    else:
                        lo = middle + 1
                h = lo
                while h < rows:
                    if skip[h] != h:
                        skip[h] = skip[skip[h]]
                        h = skip[h]
                        continue
                    z = ray_z[k, h]
                    if z < bottom or z <= 0:
                        break
                    first[camera, column, h] = k
                    skip[h] = h + 1
                    unresolved -= 1
                    h += 1


@kernel("void(float32[::1], float32[::1], int64, float64[:, ::1], float64[::1], float64[::1], float64[::1],"
        " float64[::1], float64, int64, int32[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1])")
def refine_hits(height, base, size, cameras, east, north, slope, distances, camera_height, bisections,
                first, near, far):
    """Bisect each hit pixel's ray between its last free sample and its first occupied one.

    ``near`` and ``far`` ``(B, W, H)`` end ``bisections`` halvings apart,
    ``far`` in matter (or at the first hit sample) and ``near`` before it (0
    before the first sample). The middle point is occupied when ``bottom <=
    z <= top`` and ``z > 0``, compared in float64. Pixels that hit nothing are
    left as they are.
    """
    outside = size * size
    for camera in range(cameras.shape[0]):
        cx, cy = cameras[camera, 0], cameras[camera, 1]
        for column in range(east.shape[0]):
            de, dn = east[column], north[column]
            for h in range(slope.shape[0]):
                k = first[camera, column, h]
                if k < 0:
                    continue
                before = distances[k - 1] if k > 0 else 0.0
                after = distances[k]
                for _ in range(bisections):
                    middle = (before + after) * 0.5
                    z = camera_height + slope[h] * middle
                    x = cx + middle * de
                    south = size - (cy + middle * dn)
                    cell = outside
                    if x >= 0 and x < size and south >= 0 and south < size:
                        cell = int(south) * size + int(x)
                    if z <= np.float64(height[cell]) and z >= np.float64(base[cell]) and z > 0:
                        after = middle
                    else:
                        before = middle
                near[camera, column, h] = before
                far[camera, column, h] = after


@helper
def window_share(position, pixel, low, high):
    """The share of a pixel that windows cover along one facade axis, in units of a bay (or storey):
    1 or 0 as the window span ``[low, high)`` of the bay holds ``position``, or the span's width where
    the ``pixel`` is half a bay or more."""
    if pixel >= 0.5:
        return high - low
    phase = position - np.floor(position)
    return 1.0 if phase >= low and phase < high else 0.0


@kernel("void(int32[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1], float64[:, ::1], float32[:, ::1],"
        " float64[::1], float64[::1], float64[::1], float64[::1], boolean[::1], float64, float64[::1],"
        " float32[::1], float32[::1], int64, float32[:, :, ::1], uint8[:, :, ::1], uint8[:, :, ::1],"
        " float32[:, ::1], float32[:, :, ::1], float32[:, :, ::1],"
        " float32[::1], float64, float32[:, ::1], float32[::1], float32[::1], float64[:, ::1], float64,"
        " uint8[:, :, :, ::1])")
def shade_pixels(first, near, far, cameras, gains,                                              # per pixel, camera
                 east, north, slope, ground_distance, far_ground, camera_height, pixel_angle,   # per column, row
                 height, base, size, normal, side, window, storey, surface, surface_far,        # the lit city
                 light, haze, sky, horizon, open_land, window_spans, bay_per_storey,            # light, windows
                 out):
    """Colour every pixel, times its camera's ``gains``, rounded half to even into ``out (B, H, W, 3)``.

    A ray that hit nothing shows the ``sky`` colour of its row (rows looking
    up) or the lit ground where it meets it, ``ground_distance[h]`` away:
    ``surface_far`` where ``far_ground[h]`` (a pixel spans several cells),
    ``open_land`` beyond the map. A hit shows the matter at ``far``: its lit
    top if the ray was above it at ``near``, its underside (``side`` at the
    underside level) if below, else its facade: ``side``, lit by the facade's
    orientation to the sun, mixed with ``window`` by the share of the pixel
    that windows cover (``window_spans``: within a bay along, a storey up).
    Ground and matter fade towards ``horizon`` by ``d / (d + haze)``.
    ``pixel_angle`` is a pixel's (width, height) in radians; ``light`` is
    (ambient, direct, sun east, sun north, underside level) in float32.
    """
    ambient, direct, sun_east, sun_north, underside = light[0], light[1], light[2], light[3], light[4]
    one = np.float32(1)
    half = size / 2
    colour = np.empty(3, np.float32)
    for camera in range(cameras.shape[0]):
        cx, cy = cameras[camera, 0], cameras[camera, 1]
        for column in range(east.shape[0]):
            de, dn = east[column], north[column]
            for h in range(slope.shape[0]):
                distance = 0.0  # along the ray to what the pixel shows; 0 for the sky
                if first[camera, column, h] >= 0:
                    distance = far[camera, column, h]
                    x, y = cx + distance * de, cy + distance * dn
                    row, col = int(np.floor(size - y)), int(np.floor(x))
                    before = camera_height + slope[h] * near[camera, column, h]
                    if before > np.float64(height[row * size + col]):
                        for c in range(3):
                            colour[c] = surface[row, col, c]
                    elif before < np.float64(base[row * size + col]):
                        for c in range(3):
                            colour[c] = np.float32(side[row, col, c]) * underside
                    else:
                        facing = normal[row, col, 0] * sun_east + normal[row, col, 1] * sun_north
                        if facing < 0:
                            facing = np.float32(0)
                        level = ambient + direct * facing
                        z = camera_height + slope[h] * distance
                        storey_height = np.float64(storey[row, col])
                        share = np.float32(0)
                        if storey_height > 0 and z > storey_height:
                            # Along the facade from the map centre, so that turning the map keeps the windows.
                            bay = storey_height * bay_per_storey
                            along = ((x - half) * np.float64(-normal[row, col, 1])
                                     + (y - half) * np.float64(normal[row, col, 0]))
                            share_along = window_share(along / bay, distance * pixel_angle[0] / bay,
                                                       window_spans[0, 0], window_spans[0, 1])
                            share_up = window_share(z / storey_height, distance * pixel_angle[1] / storey_height,
                                                    window_spans[1, 0], window_spans[1, 1])
                            share = np.float32(share_along * share_up)
                        for c in range(3):
                            colour[c] = (np.float32(side[row, col, c]) * level * (one - share)
                                         + np.float32(window[row, col, c]) * level * share)
                elif slope[h] >= 0:
                    for c in range(3):
                        colour[c] = sky[h, c]
                else:
                    distance = ground_distance[h]
                    x, south = cx + distance * de, size - (cy + distance * dn)
                    inside = x >= 0 and x < size and south >= 0 and south < size
                    row, col = (int(south), int(x)) if inside else (0, 0)
                    for c in range(3):
                        if not inside:
                            colour[c] = open_land[c]
                        elif far_ground[h]:
                            colour[c] = surface_far[row, col, c]
                        else:
                            colour[c] = surface[row, col, c]
                if distance > 0:  # ground or matter; the sky has no haze
                    fade = np.float32(distance / (distance + haze))
                    for c in range(3):
                        colour[c] = colour[c] * (one - fade) + horizon[c] * fade
                for c in range(3):
                    value = np.rint(colour[c] * gains[camera, c])
                    out[camera, h, column, c] = np.uint8(min(max(value, np.float32(0)), np.float32(255)))
