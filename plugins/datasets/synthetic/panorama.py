"""Ground view: equirectangular 360-degree panoramas ray-marched over the height map.

Row ``r`` of an ``H x W`` panorama looks at elevation ``90 - 180 (r + 0.5) / H``
degrees (top row up, bottom row down); column ``c`` at azimuth ``360 c / W``
degrees clockwise from north, so column 0 faces north and column ``W / 4``
east. Each column marches one ray along geometrically spaced distances; a
pixel's ray hits the first sample whose column of matter (between a cell's
``base`` and ``height``) contains the ray's height there, refined by
bisection. What a pixel shows follows from where it hits: a facade shaded by
its orientation to the sun with windows on a storey grid, the underside of a
canopy, a lit top surface, the ground (perspective falls out of the ray
geometry), or the sky. The per-pixel work (marching, bisecting, shading) runs
in the compiled loops of :mod:`.ray_march`; this module sets up what they
share: the ray geometry, the rows' ray heights, the sky and the light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .lighting import LitCity
from .ray_march import march_rays, refine_hits, shade_pixels

CAMERA_HEIGHT = 2.0
NEAREST_SAMPLE = 0.5
FARTHEST_SAMPLE = 360.0
SAMPLES = 128
BISECTIONS = 4
WINDOW_ALONG = (0.2, 0.8)      # window span within one window bay, as a fraction of the bay
WINDOW_UP = (0.3, 0.75)        # window span within one storey
BAY_PER_STOREY = 0.8           # bay width as a fraction of the storey height
FAR_GROUND_FOOTPRINT = 2.0     # metres per pixel beyond which ground reads the blurred surface
CAMERAS_PER_STEP = 16         # cameras whose per-pixel hits are held at once (1.3 MB at 32 x 128: in cache)


@dataclass(frozen=True)
class PanoramaGeometry:
    """The ray directions of an ``H x W`` panorama and the distances each ray is sampled at."""

    height: int
    width: int
    east: np.ndarray        # (W,) ray direction per column
    north: np.ndarray       # (W,)
    slope: np.ndarray       # (H,) tangent of each row's elevation
    elevation: np.ndarray   # (H,) elevation of each row, degrees
    distances: np.ndarray   # (K,)

    @classmethod
    def of(cls, size: tuple[int, int]) -> "PanoramaGeometry":
        height, width = size
        if width % 4:
            raise ValueError(f"panorama width must be divisible by 4, got {width}")
        quarter = width // 4
        # The first quadrant's directions, then exact quarter turns of them, so a
        # map turned by 90 degrees gives a panorama rolled by exactly W / 4.
        sin = np.array([math.sin(2 * math.pi * c / width) for c in range(quarter)])
        cos = np.array([math.cos(2 * math.pi * c / width) for c in range(quarter)])
        east = np.concatenate([sin, cos, -sin, -cos])
        north = np.concatenate([cos, -sin, -cos, sin])
        elevation = np.array([90.0 - 180.0 * (r + 0.5) / height for r in range(height)])
        slope = np.array([math.tan(math.radians(e)) for e in elevation])
        ratio = (FARTHEST_SAMPLE / NEAREST_SAMPLE) ** (1 / (SAMPLES - 1))
        distances = np.array([NEAREST_SAMPLE * ratio ** k for k in range(SAMPLES)])
        return cls(height, width, east, north, slope, elevation, distances)


def render_panoramas(lit: LitCity, positions: np.ndarray, size: tuple[int, int] = (32, 128),
                     exposure: np.ndarray | None = None, camera_height: float = CAMERA_HEIGHT) -> np.ndarray:
    """uint8 panoramas ``(B, H, W, 3)`` seen from ``positions`` ``(B, 2)`` (x east, y north, metres).

    ``exposure`` ``(B, 3)`` multiplies each panorama's colour channels (the
    per-shot lighting change); cameras are ``camera_height`` above the ground.
    """
    g = PanoramaGeometry.of(size)
    positions = np.ascontiguousarray(positions, np.float64).reshape(-1, 2)
    gains = np.ones((len(positions), 3), np.float32) if exposure is None else np.asarray(exposure, np.float32)
    gains = np.ascontiguousarray(gains)
    height, base = lit.matter
    occupied = height > 0
    ray_z, last_sample = _ray_heights(g, camera_height, float(lit.city.height.max()))
    expiring_rows = np.argsort(last_sample, kind="stable")  # rows in the order a march gives them up
    expiring_after = last_sample[expiring_rows]
    # The ground a downward row meets when nothing is in the way, and whether it reads the blurred surface there.
    ground_distance = np.divide(camera_height, -g.slope, out=np.zeros(g.height), where=g.slope < 0)
    far_ground = ground_distance * (2 * math.pi / g.width) > FAR_GROUND_FOOTPRINT
    pixel_angle = np.array([2 * math.pi / g.width, math.pi / g.height])
    rays = (g.east, g.north, g.slope, ground_distance, far_ground, float(camera_height), pixel_angle)
    scene = _scene(lit, g)
    out = np.empty((len(positions), g.height, g.width, 3), np.uint8)
    step = (min(len(positions), CAMERAS_PER_STEP), g.width, g.height)
    hits, nears, fars = np.empty(step, np.int32), np.empty(step), np.empty(step)  # reused by each step
    for start in range(0, len(positions), CAMERAS_PER_STEP):
        cameras = positions[start:start + CAMERAS_PER_STEP]
        first, near, far = hits[:len(cameras)], nears[:len(cameras)], fars[:len(cameras)]
        march_rays(occupied, height, base, lit.city.size, cameras, g.east, g.north, g.distances, ray_z,
                   expiring_rows, expiring_after, first)
        refine_hits(height, base, lit.city.size, cameras, g.east, g.north, g.slope, g.distances,
                    float(camera_height), BISECTIONS, first, near, far)
        shade_pixels(first, near, far, cameras, gains[start:start + CAMERAS_PER_STEP], *rays, *scene,
                     out[start:start + CAMERAS_PER_STEP])
    return out


def _scene(lit: LitCity, g: PanoramaGeometry) -> tuple:
    """What :func:`.ray_march.shade_pixels` reads of the lit city, in its argument order."""
    city, light = lit.city, lit.light
    height, base = lit.matter
    layers = (city.normal, city.side, city.window, city.storey, lit.surface, lit.surface_far)
    east, north, _ = light.sun
    levels = np.array([light.ambient, light.direct, east, north, light.ambient * 0.8], np.float32)
    sunlit = light.ambient + light.direct * light.sun[2]
    open_land = np.array(city.outside, np.float32) * np.float32(sunlit)
    horizon = np.array(light.sky_horizon, np.float32)
    window_spans = np.array([WINDOW_ALONG, WINDOW_UP], np.float64)
    return (height, base, city.size, *map(np.ascontiguousarray, layers), levels, float(light.haze_metres),
            _sky(lit, g), horizon, open_land, window_spans, BAY_PER_STOREY)


def _ray_heights(g: PanoramaGeometry, camera_height: float, tallest: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ray height at each sample ``(K, H)``, and the last sample at which it can meet matter (or -1).

    Past that sample a row's ray is under the ground or above the tallest
    matter, so a column's march can stop once every row still unresolved is
    past it.
    """
    ray_z = camera_height + g.slope[None, :] * g.distances[:, None]
    reachable = (ray_z > 0) & (ray_z <= tallest)
    last = len(g.distances) - 1 - reachable[::-1].argmax(axis=0)
    return np.ascontiguousarray(ray_z), np.where(reachable.any(axis=0), last, -1)


def _sky(lit: LitCity, g: PanoramaGeometry) -> np.ndarray:
    """Sky colour per row: horizon colour blending to zenith colour with elevation."""
    horizon, zenith = np.array(lit.light.sky_horizon, np.float32), np.array(lit.light.sky_zenith, np.float32)
    blend = np.clip(g.elevation / 90.0, 0, 1).astype(np.float32)[:, None]
    return horizon * (1 - blend) + zenith * blend
