"""The street frame: coordinates ``(u, v)`` in which a city's streets are straight lines.

A grid city uses ``(u, v) = (x, y)`` shifted to the centre; a rotated grid
turns that by an angle; an irregular city also warps it with a smooth random
displacement, so the streets (lines of constant ``u`` or ``v``) bend. The
city plan is laid out in this frame and rasterised by evaluating ``(u, v)``
at every cell centre, so buildings follow the bent streets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .draws import Draws
from .resample import sample_fields, unwarp

WARP_WAVELENGTH = 160.0
INVERSE_ITERATIONS = 6
OUTLINE_POINTS = 9


@dataclass(frozen=True)
class SmoothField:
    """A smooth random scalar field: bilinear interpolation of random values on a coarse grid."""

    values: np.ndarray
    spacing: float

    @classmethod
    def random(cls, rng: np.random.Generator | Draws, size: float, spacing: float, amplitude: float) -> "SmoothField":
        """Node values uniform in ``[-amplitude, amplitude]``, nodes ``spacing`` apart over ``size`` and beyond."""
        nodes = int(math.ceil(size / spacing)) + 2
        return cls(rng.uniform(-amplitude, amplitude, (nodes, nodes)), spacing)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The field at points ``(x, y)`` (extrapolated linearly just beyond the nodes)."""
        (value,) = SmoothField.evaluate((self,), x, y)
        return value

    @staticmethod
    def evaluate(fields: tuple["SmoothField", ...], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Fields with the same nodes at the same points: the weights are found once for all of them."""
        spacing, shape = fields[0].spacing, fields[0].values.shape
        if any(f.spacing != spacing or f.values.shape != shape for f in fields):
            return [value for f in fields for value in SmoothField.evaluate((f,), x, y)]
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        out = np.empty((len(fields), x.size))
        sample_fields(np.stack([f.values for f in fields]).astype(np.float64), float(spacing),
                      x.ravel(), y.ravel(), out)
        return list(out.reshape(len(fields), *x.shape))


@dataclass(frozen=True)
class StreetFrame:
    """Maps city points ``(x, y)`` to street coordinates ``(u, v)`` (metres, origin at the centre)."""

    size: int
    cos: float
    sin: float
    warp: float
    warp_u: SmoothField | None = None
    warp_v: SmoothField | None = None

    @classmethod
    def random(cls, rng: np.random.Generator | Draws, size: int, network: str, warp: float) -> "StreetFrame":
        """A frame for a ``grid``, ``rotated`` or ``irregular`` street network."""
        angle = 0.0 if network == "grid" else rng.uniform(8.0, 82.0)
        radians = math.radians(angle)
        if network != "irregular" or warp == 0:
            return cls(size, math.cos(radians), math.sin(radians), 0.0)
        fields = [SmoothField.random(rng, size, WARP_WAVELENGTH, warp) for _ in range(2)]
        return cls(size, math.cos(radians), math.sin(radians), warp, *fields)

    def uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Street coordinates of points ``(x, y)``."""
        dx, dy = np.asarray(x, np.float64) - self.size / 2, np.asarray(y, np.float64) - self.size / 2
        u = dx * self.cos + dy * self.sin
        v = dy * self.cos - dx * self.sin
        if self.warp_u is not None:
            warp_u, warp_v = self._warp(x, y)
            u = u + warp_u
            v = v + warp_v
        return u, v

    def cell_uv(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Street coordinates of the centres of the cells in a window of the map."""
        col = np.arange(cols.start, cols.stop, dtype=np.float64) + 0.5
        y = self.size - (np.arange(rows.start, rows.stop, dtype=np.float64) + 0.5)
        return self.uv(col[None, :], y[:, None])

    def xy(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """The inverse of :meth:`uv`: city points of street coordinates.

        Without warp this is exact; with warp a fixed-point iteration brings
        it within a few centimetres (the warp's slope is well below one).
        """
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        if self.warp_u is None:
            return self._unrotate(u, v)
        u, v = np.broadcast_arrays(u, v)
        x, y = np.empty(u.shape), np.empty(u.shape)
        fields = np.stack([self.warp_u.values, self.warp_v.values]).astype(np.float64)
        unwarp(fields, float(self.warp_u.spacing), self.size / 2, self.cos, self.sin, INVERSE_ITERATIONS,
               u.ravel(), v.ravel(), x.reshape(-1), y.reshape(-1))
        return x, y

    def _warp(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """The displacements of ``u`` and of ``v`` at points ``(x, y)``."""
        return SmoothField.evaluate((self.warp_u, self.warp_v), x, y)

    def _unrotate(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.size / 2 + u * self.cos - v * self.sin, self.size / 2 + u * self.sin + v * self.cos

    def windows(self, boxes: np.ndarray) -> list[tuple[slice, slice] | None]:
        """For each street-frame box ``(u0, u1, v0, v1)``, the map rows and columns that can hold it.

        None where the box is off the map. All boxes are inverted in one
        vectorised pass: per-object inversion would dominate city build time.
        """
        row0, row1, col0, col1 = self.window_bounds(boxes)
        return [(slice(int(r0), int(r1)), slice(int(c0), int(c1))) if c0 < c1 and r0 < r1 else None
                for r0, r1, c0, c1 in zip(row0, row1, col0, col1)]

    def window_bounds(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`windows` as arrays of first and end rows and columns (empty where end <= first)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        u0, u1, v0, v1 = (boxes[:, i:i + 1] for i in range(4))
        # Points along each outline, close enough that the warp cannot bulge a box past them.
        t = np.linspace(0.0, 1.0, 2 if self.warp_u is None else OUTLINE_POINTS)[None, :]
        us = np.concatenate([u0 + (u1 - u0) * t, u0 + (u1 - u0) * t, u0 + 0 * t, u1 + 0 * t], axis=1)
        vs = np.concatenate([v0 + 0 * t, v1 + 0 * t, v0 + (v1 - v0) * t, v0 + (v1 - v0) * t], axis=1)
        x, y = self.xy(us, vs)
        margin = 1.0 if self.warp_u is None else 2.0
        col0 = np.maximum(0, np.floor(x.min(1) - margin)).astype(np.int64)
        col1 = np.minimum(self.size, np.ceil(x.max(1) + margin)).astype(np.int64)
        row0 = np.maximum(0, np.floor(self.size - y.max(1) - margin)).astype(np.int64)
        row1 = np.minimum(self.size, np.ceil(self.size - y.min(1) + margin)).astype(np.int64)
        return row0, row1, col0, col1
