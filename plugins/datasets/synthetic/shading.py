"""Compiled loops of the lighting: cast shadows, lit surface colours and the far-ground box blur.

Each is one pass over the map where numpy needs several whole-array passes
and temporaries; each gives numpy's bytes exactly (see :mod:`.jit`).
"""

from __future__ import annotations

import numpy as np

from .jit import kernel


@kernel("void(float32[:, ::1], int64[::1], int64[::1], float32[::1], uint8[:, ::1])")
def mark_shadows(height, rows_ahead, cols_ahead, climb, shadow):
    """Set ``shadow`` (0 or 1) where the cell ``(rows_ahead[k], cols_ahead[k])`` further on is above ``climb[k]``.

    That is: where ``height[r + dr, c + dc] > height[r, c] + climb`` for some
    offset ``k`` whose cell lies on the map. Every comparison is exact, so
    the order of the offsets does not matter. The inner loop runs over
    slices from index 0 so that it compiles to vector instructions.
    """
    size_r, size_c = height.shape
    for k in range(climb.shape[0]):
        dr, dc, rise = rows_ahead[k], cols_ahead[k], climb[k]
        first_c, end_c = max(0, -dc), size_c - max(0, dc)
        width = end_c - first_c
        for r in range(max(0, -dr), size_r - max(0, dr)):
            there = height[r + dr, first_c + dc:end_c + dc]
            here = height[r, first_c:end_c]
            out = shadow[r, first_c:end_c]
            for i in range(width):
                out[i] |= np.uint8(there[i] > here[i] + rise)


@kernel("void(uint8[:, :, ::1], boolean[:, ::1], float32, float32, float32[:, :, ::1])")
def shade_tops(top, shadow, lit_level, shadow_level, surface):
    """``surface = top * level``, the level ``lit_level`` outside shadow and ``shadow_level`` in it (float32)."""
    size_r, size_c, depth = top.shape
    level = np.empty(size_c, np.float32)
    for r in range(size_r):
        dark, colours, out = shadow[r], top[r].reshape(-1), surface[r].reshape(-1)
        for c in range(size_c):
            level[c] = shadow_level if dark[c] else lit_level
        for d in range(depth):
            for c in range(size_c):
                out[c * depth + d] = np.float32(colours[c * depth + d]) * level[c]


@kernel("void(float32[:, :, ::1], int64, float32[:, :, ::1])")
def box_mean(image, radius, mean):
    """``mean`` = the mean over each (2 radius + 1)^2 window, edges replicated, of ``image`` rounded half to even.

    The window sums are integers, exact in any order: a running sum down each
    column (the row entering the window added, the one leaving it taken
    off), then across each row of those. Each is converted to float32
    (exactly, below 2^24) and divided by the window's cell count in float32.
    """
    rows, cols, depth = image.shape
    width, span, margin = cols * depth, 2 * radius + 1, radius * depth
    levels = image.reshape(rows, width)
    down = np.zeros(width + 2 * margin, np.int32)  # column sums, edge columns replicated on both sides
    inner = down[margin:margin + width]
    for k in range(-radius, radius + 1):
        entering = levels[min(max(k, 0), rows - 1)]
        for i in range(width):
            inner[i] += np.int32(np.rint(entering[i]))
    total = np.empty(width, np.int32)
    count = np.float32(span * span)
    for r in range(rows):
        if r > 0:
            entering, leaving = levels[min(r + radius, rows - 1)], levels[max(r - radius - 1, 0)]
            for i in range(width):
                inner[i] += np.int32(np.rint(entering[i])) - np.int32(np.rint(leaving[i]))
        for k in range(radius):
            for d in range(depth):
                down[k * depth + d] = inner[d]
                down[margin + width + k * depth + d] = inner[width - depth + d]
        for i in range(width):
            total[i] = down[i]
        for k in range(1, span):
            shifted = down[k * depth:k * depth + width]
            for i in range(width):
                total[i] += shifted[i]
        out = mean[r].reshape(width)
        for i in range(width):
            out[i] = np.float32(total[i]) / count
