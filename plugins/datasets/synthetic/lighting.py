"""Sun, sky and shadows: a :class:`CityMap` lit once, shared by every view rendered from it.

Shadows are marched over the height map towards the sun with whole-cell
offsets, clipped at the map edge (never wrapped round it). Only IEEE
arithmetic and comparisons touch per-cell data, so the result is the same
on any machine; the few trigonometric values are scalars from ``math``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .citymap import CityMap
from .shading import box_mean, mark_shadows, shade_tops

MAX_SHADOW_STEPS = 240
FAR_BLUR_CELLS = 2  # half-width of the box blur that stands in for mip-mapping distant ground


@dataclass(frozen=True)
class Lighting:
    """Sun direction, light levels and sky colours of one moment.

    ``sun`` is the unit vector towards the sun as (east, north, up). A lit
    horizontal surface receives ``ambient + direct * up``; one in shadow
    ``ambient`` only. Distant points fade towards ``sky_horizon`` as
    ``d / (d + haze_metres)``.
    """

    sun: tuple[float, float, float]
    ambient: float = 0.5
    direct: float = 0.6
    sky_horizon: tuple[float, float, float] = (206.0, 218.0, 232.0)
    sky_zenith: tuple[float, float, float] = (92.0, 140.0, 206.0)
    haze_metres: float = 700.0

    @classmethod
    def from_angles(cls, azimuth_deg: float, elevation_deg: float, **levels: object) -> "Lighting":
        """Sun at ``azimuth_deg`` clockwise from north, ``elevation_deg`` above the horizon."""
        azimuth, elevation = math.radians(azimuth_deg), math.radians(elevation_deg)
        sun = (math.cos(elevation) * math.sin(azimuth), math.cos(elevation) * math.cos(azimuth), math.sin(elevation))
        return cls(sun, **levels)  # type: ignore[arg-type]

    def rot90(self) -> "Lighting":
        """The same light for the world turned a quarter counter-clockwise (see :meth:`CityMap.rot90`)."""
        east, north, up = self.sun
        return replace(self, sun=(-north, east, up))


def cast_shadows(height: np.ndarray, sun: tuple[float, float, float]) -> np.ndarray:
    """Cells whose surface some taller cell hides from the sun (boolean, like ``height``)."""
    east, north, up = sun
    horizontal = math.hypot(east, north)
    shadow = np.zeros(height.shape, np.uint8)
    if horizontal < 1e-9 or up <= 0:
        return shadow.view(bool)
    rise = up / horizontal  # metres the sun ray climbs per metre travelled towards the sun
    steps = min(MAX_SHADOW_STEPS, int(math.ceil(float(height.max()) / rise)))
    size_r, size_c = height.shape
    offsets: dict[tuple[int, int], np.float32] = {}  # first (lowest) climb of each whole-cell offset
    for t in range(1, steps + 1):
        dc, dr = round(t * east / horizontal), round(-t * north / horizontal)
        if abs(dr) < size_r and abs(dc) < size_c:
            offsets.setdefault((dr, dc), np.float32(t * rise))
    rows_ahead = np.array([dr for dr, _ in offsets], np.int64)
    cols_ahead = np.array([dc for _, dc in offsets], np.int64)
    mark_shadows(np.ascontiguousarray(height, np.float32), rows_ahead, cols_ahead,
                 np.array(list(offsets.values()), np.float32), shadow)
    return shadow.view(bool)


def surface_normals(height: np.ndarray) -> np.ndarray:
    """Unit normals (east, north, up) of the height map by central differences, edges replicated."""
    padded = np.pad(height.astype(np.float32), 1, mode="edge")
    slope_east = (padded[1:-1, 2:] - padded[1:-1, :-2]) * np.float32(0.5)
    slope_north = (padded[:-2, 1:-1] - padded[2:, 1:-1]) * np.float32(0.5)  # row 0 is north
    norm = np.sqrt(slope_east * slope_east + slope_north * slope_north + np.float32(1))
    return np.stack([-slope_east / norm, -slope_north / norm, 1 / norm], axis=-1)


def box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)^2 window, edges replicated, of an image ``(rows, cols, channels)`` in whole levels.

    Integer sums are exact in any order, so blurring a turned image gives the
    turned blur, bit for bit. The quotient is rounded to float32 directly:
    with both operands exact, that equals rounding the float64 quotient
    (53 >= 2 * 24 + 2 bits).
    """
    mean = np.empty(image.shape, np.float32)
    box_mean(np.ascontiguousarray(image, np.float32), radius, mean)
    return mean


@dataclass
class LitCity:
    """A city under one lighting: its cast shadows and the lit colour of every top surface.

    ``surface`` is ``top`` times the light a horizontal surface gets there
    (shadow included); ``surface_far`` is the same blurred, read for ground
    so far away that one pixel spans several cells. Both are computed when
    first read: the satellite view needs neither.
    """

    city: CityMap
    light: Lighting
    shadow: np.ndarray

    @cached_property
    def surface(self) -> np.ndarray:
        light = self.light
        ambient = np.float32(light.ambient)
        surface = np.empty(self.city.top.shape, np.float32)
        shade_tops(np.ascontiguousarray(self.city.top), np.ascontiguousarray(self.shadow),
                   ambient + np.float32(light.direct * light.sun[2]), ambient, surface)
        return surface

    @cached_property
    def surface_far(self) -> np.ndarray:
        return box_blur(self.surface, FAR_BLUR_CELLS)

    @cached_property
    def matter(self) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's ``height`` and ``base``, flattened row-major, then one empty cell for beyond the map.

        A ray sample reads both with one index and no masking (the panorama's inner loop).
        """
        empty = np.zeros(1, np.float32)
        return (np.concatenate([self.city.height.reshape(-1), empty]),
                np.concatenate([self.city.base.reshape(-1), empty]))


def light_city(city: CityMap, light: Lighting) -> LitCity:
    """Cast shadows on ``city``; its lit top surfaces follow when first read."""
    return LitCity(city, light, cast_shadows(city.height, light.sun))
