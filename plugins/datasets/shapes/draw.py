"""The twelve classes as geometry: each maps pixel coordinates to foreground coverage in [0, 1].

Object shapes (disc, square, triangle, ring, cross, star, crescent) are a
silhouette given by a signed distance in the object's own frame (radius
about 1), placed, scaled and rotated by the caller; textures (stripes,
checkerboard, dots, grid, zigzag) are a pattern of period 1 filling the whole
image. Coverage is ``clip(0.5 - distance_in_pixels, 0, 1)``: a one-pixel
anti-aliased edge, so the class is in the outline, never in a colour.

Only ``+ - * /``, ``sqrt``, ``floor``, ``abs``, ``min`` and ``max`` are used:
IEEE 754 rounds each exactly, so the same inputs give the same bytes on every
machine (no ``sin``, ``atan2`` or ``exp``, whose last bits vary between
maths libraries and SIMD paths).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# Alternating shape and texture, so every prefix (the ``classes`` option) mixes both kinds.
CLASS_NAMES = ("disc", "stripes", "square", "checkerboard", "triangle", "dots", "ring", "grid",
               "cross", "zigzag", "star", "crescent")

Array = np.ndarray
_HALF_SQRT3 = np.float32(0.8660254037844386)


def edge(distance_px: Array) -> Array:
    """Coverage of a pixel whose centre is ``distance_px`` outside the outline (negative: inside)."""
    return np.clip(np.float32(0.5) - distance_px, 0.0, 1.0)


def _frac(value: Array) -> Array:
    return value - np.floor(value)


def _triangle(u: Array, v: Array) -> Array:
    """Equilateral triangle of circumradius 1 (inradius 0.5): the max of three half-planes."""
    return np.maximum(np.maximum(v, _HALF_SQRT3 * u - 0.5 * v), -_HALF_SQRT3 * u - 0.5 * v) - 0.5


def _disc(u, v, q):
    return np.sqrt(u * u + v * v) - 1.0


def _ring(u, v, q):
    inner = 0.45 + 0.25 * q[0]  # inner radius 0.45..0.7 of the outer
    return np.abs(np.sqrt(u * u + v * v) - (1.0 + inner) / 2) - (1.0 - inner) / 2


def _triangle_shape(u, v, q):
    return _triangle(u, v)


def _square(u, v, q):
    return np.maximum(np.abs(u), np.abs(v)) - 0.72


def _cross(u, v, q):
    half_width = 0.2 + 0.1 * q[0]
    au, av = np.abs(u), np.abs(v)
    return np.minimum(np.maximum(au - 1.0, av - half_width), np.maximum(au - half_width, av - 1.0))


def _star(u, v, q):
    """Hexagram: a triangle and its mirror image."""
    return np.minimum(_triangle(u, v), _triangle(u, -v))


def _crescent(u, v, q):
    """A disc with an overlapping disc bitten out of one side."""
    offset = 0.35 + 0.2 * q[0]
    bite = 0.75 + 0.15 * q[1]
    bitten = u - offset
    return np.maximum(np.sqrt(u * u + v * v) - 1.0, bite - np.sqrt(bitten * bitten + v * v))


def _stripes(u, v, q, px):
    duty = 0.35 + 0.25 * q[0]
    return edge((np.abs(_frac(u) - 0.5) - duty / 2) * px)


def _checkerboard(u, v, q, px):
    cell = px * 0.6  # squares of 0.6 period, period 1.2
    a = edge((np.abs(_frac(u / 1.2) - 0.5) - 0.25) * 2 * cell)
    b = edge((np.abs(_frac(v / 1.2) - 0.5) - 0.25) * 2 * cell)
    return a + b - 2 * a * b  # soft exclusive or


def _dots(u, v, q, px):
    radius = 0.2 + 0.12 * q[0]
    du, dv = _frac(u) - 0.5, _frac(v) - 0.5
    return edge((np.sqrt(du * du + dv * dv) - radius) * px)


def _grid(u, v, q, px):
    half_width = 0.09 + 0.05 * q[0]
    to_line_u = 0.5 - np.abs(_frac(u) - 0.5)
    to_line_v = 0.5 - np.abs(_frac(v) - 0.5)
    return edge((np.minimum(to_line_u, to_line_v) - half_width) * px)


def _zigzag(u, v, q, px):
    """Stripes along u bent into a zigzag: v displaced by a triangle wave of u."""
    amplitude = 0.6 + 0.4 * q[0]
    zig_period = 0.8 + 0.6 * q[1]
    wave = np.abs(2 * _frac(u / zig_period) - 1)
    duty = 0.45 + 0.1 * q[2]
    return edge((np.abs(_frac(v + amplitude * wave) - 0.5) - duty / 2) * px)


# name -> signed distance (object radius ~1) of (u, v, q): q is three per-image uniforms
SHAPES: dict[str, Callable[..., Array]] = {
    "disc": _disc, "square": _square, "triangle": _triangle_shape,
    "ring": _ring, "cross": _cross, "star": _star, "crescent": _crescent,
}
# name -> coverage of (u, v, q, pixels per period)
TEXTURES: dict[str, Callable[..., Array]] = {
    "stripes": _stripes, "checkerboard": _checkerboard, "dots": _dots, "grid": _grid, "zigzag": _zigzag,
}
assert set(SHAPES) | set(TEXTURES) == set(CLASS_NAMES)


def shape_coverage(name: str, x: Array, y: Array, instances: list[tuple], q: list[Array]) -> Array:
    """Shape ``name`` drawn once in each instance's cell, float32 (N, H, W).

    ``x`` (1, 1, W) and ``y`` (1, H, 1) are pixel centres; each instance is
    (rows, columns, cx, cy, radius, cos, sin): the cell's slices, which tile
    the image and hold the whole instance, then arrays (N, 1, 1).
    """
    distance = SHAPES[name]
    coverage = np.empty((len(q[0]), y.shape[1], x.shape[2]), dtype=np.float32)
    for rows, columns, cx, cy, radius, cos, sin in instances:
        dx, dy = x[:, :, columns] - cx, y[:, rows, :] - cy
        u = (dx * cos + dy * sin) / radius
        v = (dy * cos - dx * sin) / radius
        coverage[:, rows, columns] = edge(distance(u, v, q) * radius)
    return coverage


def texture_coverage(name: str, x: Array, y: Array, period: Array, cos: Array, sin: Array,
                     phase_u: Array, phase_v: Array, q: list[Array]) -> Array:
    """Texture ``name`` of ``period`` pixels, rotated by (cos, sin) and shifted by the phases; arrays (N, 1, 1)."""
    u = (x * cos + y * sin) / period + phase_u
    v = (y * cos - x * sin) / period + phase_v
    return TEXTURES[name](u, v, q, period)
