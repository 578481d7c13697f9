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
geometry), or the sky. Everything is vectorised over cameras, columns, rows
and samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .lighting import LitCity

CAMERA_HEIGHT = 2.0
NEAREST_SAMPLE = 0.5
FARTHEST_SAMPLE = 360.0
SAMPLES = 128
BISECTIONS = 4
WINDOW_ALONG = (0.2, 0.8)      # window span within one window bay, as a fraction of the bay
WINDOW_UP = (0.3, 0.75)        # window span within one storey
BAY_PER_STOREY = 0.8           # bay width as a fraction of the storey height
FAR_GROUND_FOOTPRINT = 2.0     # metres per pixel beyond which ground reads the blurred surface
BATCH_ELEMENTS = 16_000_000    # cameras x columns x rows x samples per vectorised step
ENTERED_SIDE, ENTERED_TOP, ENTERED_BELOW = 0, 1, 2  # through which face a ray entered the matter it hit


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
    geometry = PanoramaGeometry.of(size)
    positions = np.asarray(positions, np.float64).reshape(-1, 2)
    gains = np.ones((len(positions), 3), np.float32) if exposure is None else np.asarray(exposure, np.float32)
    per_camera = geometry.width * geometry.height * SAMPLES
    batch = max(1, BATCH_ELEMENTS // per_camera)
    out = np.empty((len(positions), geometry.height, geometry.width, 3), np.uint8)
    for start in range(0, len(positions), batch):
        chunk = slice(start, start + batch)
        colour = _render_batch(lit, geometry, positions[chunk], camera_height)   # (B, W, H, 3)
        colour = colour * gains[chunk, None, None, :]
        out[chunk] = np.clip(np.round(colour), 0, 255).astype(np.uint8).transpose(0, 2, 1, 3)
    return out


def _render_batch(lit: LitCity, g: PanoramaGeometry, cameras: np.ndarray, camera_height: float) -> np.ndarray:
    """Float colours ``(B, W, H, 3)`` of a batch of cameras."""
    hit, first = _first_hits(lit, g, cameras, camera_height)
    colour = np.empty(hit.shape + (3,), np.float32)
    # Each pixel class as (camera, column, row) indices, in the order a boolean mask lists them:
    # the per-pixel ray values are then small table look-ups instead of masked broadcast arrays.
    upward = (g.slope >= 0)[None, None, :]

    sky = ~hit & upward
    colour[sky] = _sky(lit, g)[np.nonzero(sky)[2]]

    ground = ~hit & ~upward
    b, w, h = np.nonzero(ground)
    distance = camera_height / -g.slope[h]
    gx, gy = cameras[b, 0] + distance * g.east[w], cameras[b, 1] + distance * g.north[w]
    footprint = distance * (2 * math.pi / g.width)
    colour[ground] = _haze(lit, _ground_colour(lit, gx, gy, footprint), distance)

    # Matter: bisect between the last free sample and the first occupied one.
    b, w, h = np.nonzero(hit)
    s, de, dn, cx, cy = g.slope[h], g.east[w], g.north[w], cameras[b, 0], cameras[b, 1]
    sample = first[b, w, h]
    near = np.where(sample > 0, g.distances[np.maximum(sample - 1, 0)], 0.0)
    far = g.distances[sample]
    for _ in range(BISECTIONS):
        middle = (near + far) * 0.5
        z = camera_height + s * middle
        top, bottom = _column(lit, cx + middle * de, cy + middle * dn)
        occupied = (z <= top) & (z >= bottom) & (z > 0)
        far = np.where(occupied, middle, far)
        near = np.where(occupied, near, middle)
    hx, hy = cx + far * de, cy + far * dn
    row, col, _ = lit.city.cell_of(hx, hy)
    z_before = camera_height + s * near
    entry = np.where(z_before > lit.city.height[row, col], ENTERED_TOP,
                     np.where(z_before < lit.city.base[row, col], ENTERED_BELOW, ENTERED_SIDE))
    shaded = _object_colour(lit, row, col, hx, hy, camera_height + s * far, far * (2 * math.pi / g.width),
                            far * (math.pi / g.height), entry)
    colour[hit] = _haze(lit, shaded, far)
    return colour


def _first_hits(lit: LitCity, g: PanoramaGeometry, cameras: np.ndarray,
                camera_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel ``(B, W, H)``: whether its ray meets matter before the ground, and at which sample (0 if none).

    Row by row, only the samples where that row's ray is above the ground and
    not above the city's tallest matter are tested: elsewhere nothing can
    be hit, and that leaves out most samples of the rows looking down.
    """
    px = cameras[:, 0, None, None] + g.distances[None, None, :] * g.east[None, :, None]   # (B, W, K)
    py = cameras[:, 1, None, None] + g.distances[None, None, :] * g.north[None, :, None]
    cell = _cells(lit, px, py)
    height, base = lit.matter
    top, bottom = height.take(cell), base.take(cell)                                       # float32
    ray_z = camera_height + g.slope[:, None] * g.distances[None, :]                        # (H, K)
    reachable = (ray_z > 0) & (ray_z <= float(lit.city.height.max()))
    # The float64 tests ``bottom <= z <= top`` against float32 heights, made in float32
    # and exactly equal: ``top >= z`` iff ``top >= z`` rounded up to float32 (and likewise down).
    # A ray below the ground (z <= 0) rounds up to infinity, which no height reaches.
    z_up = np.where(ray_z > 0, round_to_float32(ray_z, up=True), np.float32(np.inf))
    z_down = round_to_float32(ray_z, up=False)
    hit = np.zeros(px.shape[:2] + (g.height,), bool)
    first = np.zeros(px.shape[:2] + (g.height,), np.int64)
    for row in np.flatnonzero(reachable.any(axis=1)):
        ks = np.flatnonzero(reachable[row])
        span = slice(ks[0], ks[-1] + 1)
        inside = top[:, :, span] >= z_up[row, span]
        inside &= bottom[:, :, span] <= z_down[row, span]
        at = inside.argmax(axis=-1)
        hit[:, :, row] = np.take_along_axis(inside, at[..., None], axis=-1)[..., 0]
        first[:, :, row] = np.where(hit[:, :, row], at + ks[0], 0)
    return hit, first


def round_to_float32(values: np.ndarray, up: bool) -> np.ndarray:
    """The nearest float32 at or above (``up``) or at or below each float64 value."""
    rounded = values.astype(np.float32)
    off = rounded < values if up else rounded > values
    return np.where(off, np.nextafter(rounded, np.float32(np.inf if up else -np.inf)), rounded)


def _cells(lit: LitCity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Flat index into :attr:`LitCity.matter` of the cell under points ``(x, y)``: the empty one beyond the map."""
    size = lit.city.size
    # floor(v) lies in [0, size) exactly when v does, size being whole.
    south = size - y
    inside = (x >= 0) & (x < size) & (south >= 0) & (south < size)
    cell = np.floor(south).astype(np.int64) * size + np.floor(x).astype(np.int64)
    return np.where(inside, cell, size * size)


def _column(lit: LitCity, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top and underside heights of the matter at points ``(x, y)``; nothing beyond the map."""
    cell = _cells(lit, x, y)
    height, base = lit.matter
    return height.take(cell).astype(np.float64), base.take(cell).astype(np.float64)


def _sky(lit: LitCity, g: PanoramaGeometry) -> np.ndarray:
    """Sky colour per row: horizon colour blending to zenith colour with elevation."""
    horizon, zenith = np.array(lit.light.sky_horizon, np.float32), np.array(lit.light.sky_zenith, np.float32)
    blend = np.clip(g.elevation / 90.0, 0, 1).astype(np.float32)[:, None]
    return horizon * (1 - blend) + zenith * blend


def _haze(lit: LitCity, colour: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Blend towards the horizon colour by ``d / (d + haze)``: rational, so no machine-dependent exp."""
    fade = (distance / (distance + lit.light.haze_metres)).astype(np.float32)[:, None]
    return colour * (1 - fade) + np.array(lit.light.sky_horizon, np.float32) * fade


def _ground_colour(lit: LitCity, x: np.ndarray, y: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Lit ground at points ``(x, y)``: the blurred surface where a pixel spans several cells."""
    city = lit.city
    row, col, inside = city.cell_of(x, y)
    row, col = np.where(inside, row, 0), np.where(inside, col, 0)
    near, far = lit.surface[row, col], lit.surface_far[row, col]
    colour = np.where((footprint > FAR_GROUND_FOOTPRINT)[:, None], far, near)
    sunlit = lit.light.ambient + lit.light.direct * lit.light.sun[2]
    open_land = np.array(city.outside, np.float32) * np.float32(sunlit)
    return np.where(inside[:, None], colour, open_land)


def _object_colour(lit: LitCity, row: np.ndarray, col: np.ndarray, x: np.ndarray, y: np.ndarray,
                   z: np.ndarray, pixel_width: np.ndarray, pixel_height: np.ndarray,
                   entry: np.ndarray) -> np.ndarray:
    """Colour where rays hit matter: lit tops, dim undersides, facades shaded by orientation with windows."""
    city, light = lit.city, lit.light
    normal = city.normal[row, col]
    east, north, _ = light.sun
    facing = np.maximum(normal[:, 0] * np.float32(east) + normal[:, 1] * np.float32(north), 0)
    level = (np.float32(light.ambient) + np.float32(light.direct) * facing)[:, None]
    facade = city.side[row, col].astype(np.float32) * level

    storey = city.storey[row, col].astype(np.float64)
    has_windows = storey > 0
    storey = np.where(has_windows, storey, 1.0)
    bay = storey * BAY_PER_STOREY
    # Position along the facade, measured from the map centre so that turning
    # the map about its centre leaves every window where it was.
    half = city.size / 2
    along = (x - half) * -normal[:, 1] + (y - half) * normal[:, 0]
    share_along = _window_share(along / bay, pixel_width / bay, WINDOW_ALONG)
    share_up = _window_share(z / storey, pixel_height / storey, WINDOW_UP)
    share = np.where(has_windows & (z > storey), share_along * share_up, 0).astype(np.float32)[:, None]
    glass = city.window[row, col].astype(np.float32) * level
    side = facade * (1 - share) + glass * share

    top = lit.surface[row, col]
    under = city.side[row, col].astype(np.float32) * np.float32(light.ambient * 0.8)
    by_entry = np.where((entry == ENTERED_BELOW)[:, None], under, side)
    return np.where((entry == ENTERED_TOP)[:, None], top, by_entry)


def _window_share(position: np.ndarray, pixel: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """1 inside a window and 0 outside, or the window's area share where a pixel spans half a bay or more."""
    phase = position - np.floor(position)
    sharp = ((phase >= span[0]) & (phase < span[1])).astype(np.float64)
    return np.where(pixel >= 0.5, span[1] - span[0], sharp)
