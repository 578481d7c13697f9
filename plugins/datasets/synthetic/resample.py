"""Compiled loops of bilinear resampling: satellite tiles, and the street frame's smooth warp and its inverse.

Each replaces a few dozen numpy passes (or, for the many small calls of the
city planner, a few dozen numpy calls) by one loop, and gives numpy's bytes
exactly (see :mod:`.jit`): the same operations in the same order and dtypes.
"""

from __future__ import annotations

import numpy as np

from .jit import helper, kernel


@kernel("void(float32[:, :, ::1], int64[:, ::1], float32[:, ::1], int64[:, ::1], float32[:, ::1], "
        "float32[:, :, :, ::1])")
def sample_tiles(image, row0, row_weight, col0, col_weight, tiles):
    """``tiles[n, i, j]``: ``image`` between cells ``row0[n, i]`` and the next, ``col0[n, j]`` and the next.

    ``row_weight`` and ``col_weight`` are the float32 weights of the second
    row and column; a tile's rows and columns are separable, so the weights
    are given per row and per column, not per pixel.
    """
    count, rows = row0.shape
    cols, depth = col0.shape[1], image.shape[2]
    one = np.float32(1)
    for n in range(count):
        for i in range(rows):
            r, wr = row0[n, i], row_weight[n, i]
            rest_r = one - wr
            for j in range(cols):
                c, wc = col0[n, j], col_weight[n, j]
                rest_c = one - wc
                for d in range(depth):
                    top = image[r, c, d] * rest_c + image[r, c + 1, d] * wc
                    bottom = image[r + 1, c, d] * rest_c + image[r + 1, c + 1, d] * wc
                    tiles[n, i, j, d] = top * rest_r + bottom * wr


@kernel("void(float32[::1], uint8[::1])")
def to_levels(values, levels):
    """``levels`` = ``values`` rounded half to even and clipped to [0, 255], as uint8."""
    for i in range(values.shape[0]):
        levels[i] = np.uint8(min(max(np.rint(values[i]), np.float32(0)), np.float32(255)))


@helper
def field_cell(x, y, spacing, limit, columns):
    """(flat index of the lower-left node, x and y weights) of point ``(x, y)`` in a field of nodes
    ``spacing`` apart: the cell index clipped to ``[0, limit]``, the weights not (linear beyond the nodes)."""
    gx, gy = x / spacing, y / spacing
    ix, iy = min(max(np.floor(gx), 0.0), limit), min(max(np.floor(gy), 0.0), limit)
    return int(iy) * columns + int(ix), gx - ix, gy - iy


@helper
def bilinear(flat, corner, columns, fx, fy):
    """The field of flat node values ``flat`` at weights ``(fx, fy)`` from node ``corner``."""
    rest_x, rest_y = 1.0 - fx, 1.0 - fy
    return ((flat[corner] * rest_x + flat[corner + 1] * fx) * rest_y
            + (flat[corner + columns] * rest_x + flat[corner + columns + 1] * fx) * fy)


@kernel("void(float64[:, :, ::1], float64, float64[::1], float64[::1], float64[:, ::1])")
def sample_fields(values, spacing, x, y, out):
    """``out[f, i]``: field ``f`` (node values ``values[f]``, ``spacing`` apart) at point ``(x[i], y[i])``.

    Bilinear between the four nodes around the point, extrapolated linearly
    beyond the nodes (the cell index is clipped, the weight is not).
    """
    limit, columns = values.shape[1] - 2, values.shape[2]
    flat = values.reshape(values.shape[0], -1)
    for i in range(x.shape[0]):
        corner, fx, fy = field_cell(x[i], y[i], spacing, limit, columns)
        for f in range(flat.shape[0]):
            out[f, i] = bilinear(flat[f], corner, columns, fx, fy)


@kernel("void(float64[:, :, ::1], float64, float64, float64, float64, int64, float64[::1], float64[::1], "
        "float64[::1], float64[::1])")
def unwarp(values, spacing, centre, cos, sin, iterations, u, v, x, y):
    """City points ``(x, y)`` of street coordinates ``(u, v)`` by fixed-point iteration.

    The frame maps ``(x, y)`` to ``(u, v) = R(x - c, y - c) + w(x, y)``, with
    ``R`` the rotation by (``cos``, ``sin``), ``c`` the ``centre`` and ``w``
    the two fields of ``values`` (the warp of ``u`` and of ``v``, as in
    :func:`sample_fields`). Starting from the unwarped point, each iteration
    puts ``x = c + R^-1 ((u, v) - w(x, y))``.
    """
    limit, columns = values.shape[1] - 2, values.shape[2]
    warp_u, warp_v = values[0].reshape(-1), values[1].reshape(-1)
    for i in range(u.shape[0]):
        x[i], y[i] = centre + u[i] * cos - v[i] * sin, centre + u[i] * sin + v[i] * cos
    for _ in range(iterations):
        for i in range(u.shape[0]):
            corner, fx, fy = field_cell(x[i], y[i], spacing, limit, columns)
            du, dv = bilinear(warp_u, corner, columns, fx, fy), bilinear(warp_v, corner, columns, fx, fy)
            a, b = u[i] - du, v[i] - dv
            x[i], y[i] = centre + a * cos - b * sin, centre + a * sin + b * cos
