"""Rendering a subset: per-item random draws, then whole batches of one class drawn at once.

Item ``i`` of a subset has its own generator, ``default_rng([DOMAIN, seed,
subset, i])``, from which it draws, in this order, the ground view's
parameters, the aerial view's, then the ground view's noise bytes and the
aerial view's. An item is therefore the same whatever the subset's size, and
batching (by class, in chunks) changes no byte: every pixel is computed by
elementwise IEEE arithmetic on its own image's parameters only (float32; no
reductions across images, no matrix products, no transcendental functions).

Class balance: item ``i`` is of class ``i % classes`` (the classes cycle), so
every class has ``n // classes`` or one more items.

Each view gets, independently of the class and of the other view: a
background colour and a foreground colour (uniform in RGB, the foreground
at least 0.4 of the RGB cube's side away from the background), a linear
lighting gradient (+-15 % at the edges), a rotation, a position and scale
(shapes) or a period and phase (textures), and pixel noise (the same on
the three channels), triangular in [-NOISE, NOISE].
"""

from __future__ import annotations

import numpy as np

from .draw import SHAPES, shape_coverage, texture_coverage
from .options import ShapesOptions

DOMAIN = 0x5A4E_5E5  # separates these streams from any other use of the same seed
SUBSET_CODES = {"train": 0, "val": 1}
NOISE = 6
CANDIDATES = 8  # foreground colours tried, the first far enough from the background is kept
MIN_CONTRAST = 0.4  # RGB distance (unit cube) between foreground and background
PIXELS_PER_CHUNK = 2_000_000

# layout of a view's common uniforms
BG, FG = slice(0, 3), slice(3, 3 + 3 * CANDIDATES)
GRADIENT, ROTATION, PERIOD, PHASE, SHAPE_PARAMS = 27, 29, 31, 32, 34
COMMON = 37
INSTANCE = 5  # per shape instance: jitter x, jitter y, scale, rotation (2)


def instances_of(size: tuple[int, int]) -> int:
    """Shape instances per image: one per roughly square cell along the long side (4 on a 32x128 panorama).

    A wide panorama shows the class along its whole width, so a crop of it
    (pre-training's random crops) still shows most of an instance; a square
    tile shows one object.
    """
    height, width = size
    return max(1, round(max(height, width) / min(height, width)))


def render_subset(options: ShapesOptions, subset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ground images, aerial images, class index of each item) of ``subset``: uint8 (N, H, W, 3) twice, int64 (N,)."""
    count = options.train_images if subset == "train" else options.val_images
    labels = np.arange(count, dtype=np.int64) % options.classes
    sizes = (tuple(options.ground_size), tuple(options.aerial_size))
    common = [np.empty((count, COMMON)) for _ in sizes]
    instances = [np.empty((count, instances_of(size), INSTANCE)) for size in sizes]
    noise = [np.empty((count, *size), dtype=np.uint8) for size in sizes]
    for item in range(count):
        rng = np.random.default_rng([DOMAIN, options.seed, SUBSET_CODES[subset], item])
        for view in range(len(sizes)):
            common[view][item] = rng.random(COMMON)
            instances[view][item] = rng.random(instances[view].shape[1:])
        for view, size in enumerate(sizes):
            noise[view][item] = rng.integers(0, 256, size=size, dtype=np.uint8)
    return (*(_render_view(options.class_names, labels, size, common[view], instances[view], noise[view])
              for view, size in enumerate(sizes)), labels)


def _render_view(names: tuple[str, ...], labels: np.ndarray, size: tuple[int, int], common: np.ndarray,
                 instances: np.ndarray, noise: np.ndarray) -> np.ndarray:
    height, width = size
    out = np.empty((len(labels), height, width, 3), dtype=np.uint8)
    chunk = max(1, PIXELS_PER_CHUNK // (height * width))
    for label, name in enumerate(names):
        members = np.flatnonzero(labels == label)
        for start in range(0, len(members), chunk):
            items = members[start:start + chunk]
            out[items] = _draw(name, size, common[items], instances[items], noise[items])
    return out


def _rotation(t_uniform: np.ndarray, flip_uniform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of a random angle without trigonometry: t = tan(angle / 2) in [-1, 1], a half turn when flipped."""
    t = 2.0 * t_uniform - 1.0
    sign = np.where(flip_uniform < 0.5, -1.0, 1.0)
    return sign * (1.0 - t * t) / (1.0 + t * t), sign * 2.0 * t / (1.0 + t * t)


def _colours(common: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background, foreground) RGB in [0, 255], float32 (N, 3) each."""
    background = common[:, BG]
    candidates = common[:, FG].reshape(-1, CANDIDATES, 3)
    diff = candidates - background[:, None, :]
    distance2 = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2]
    far = distance2 >= MIN_CONTRAST * MIN_CONTRAST
    pick = np.where(far.any(axis=1), far.argmax(axis=1), distance2.argmax(axis=1))
    foreground = candidates[np.arange(len(candidates)), pick]
    return (255.0 * background).astype(np.float32), (255.0 * foreground).astype(np.float32)


def _column(values) -> np.ndarray:
    """Per-image values as float32 (N, 1, 1), to broadcast over pixels."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1)


def _draw(name: str, size: tuple[int, int], common: np.ndarray, instances: np.ndarray,
          noise_bytes: np.ndarray) -> np.ndarray:
    """Images (N, H, W, 3) of class ``name``: coverage, colours, lighting, noise, rounded to uint8."""
    height, width = size
    x = (np.arange(width, dtype=np.float32) + np.float32(0.5)).reshape(1, 1, width)
    y = (np.arange(height, dtype=np.float32) + np.float32(0.5)).reshape(1, height, 1)
    q = [_column(common[:, SHAPE_PARAMS + k]) for k in range(3)]
    if name in SHAPES:
        coverage = shape_coverage(name, x, y, _placements(size, instances), q)
    else:
        cos, sin = _rotation(common[:, ROTATION], common[:, ROTATION + 1])
        period = min(height, width) * (0.18 + 0.14 * common[:, PERIOD])
        coverage = texture_coverage(name, x, y, _column(period), _column(cos), _column(sin),
                                    _column(common[:, PHASE]), _column(common[:, PHASE + 1]), q)
    background, foreground = _colours(common)
    gx, gy = (_column(0.6 * common[:, GRADIENT + k] - 0.3) for k in range(2))
    across, down = x / np.float32(width) - np.float32(0.5), y / np.float32(height) - np.float32(0.5)
    light = (np.float32(1.0) + gx * across) + gy * down
    # triangular noise in [-NOISE, NOISE]: the sum of a byte's two nibbles, centred and scaled; +0.5 rounds below
    low, high = noise_bytes & np.uint8(15), noise_bytes >> np.uint8(4)
    offset = (low + high).astype(np.float32) * np.float32(NOISE / 15) - np.float32(NOISE - 0.5)
    out = np.empty((len(common), height, width, 3), dtype=np.uint8)
    channel = np.empty_like(coverage)
    for c in range(3):  # (bg + (fg - bg) * coverage) * light + noise, one channel at a time
        np.multiply(coverage, (foreground[:, c] - background[:, c]).reshape(-1, 1, 1), out=channel)
        channel += background[:, c].reshape(-1, 1, 1)
        channel *= light
        channel += offset
        np.clip(channel, 0.0, 255.0, out=channel)
        out[..., c] = channel  # truncation of a non-negative value: floor(value + 0.5)
    return out


def _placements(size: tuple[int, int], instances: np.ndarray) -> list[tuple]:
    """Each instance's (rows, columns, cx, cy, radius, cos, sin): one per cell along the long side.

    The cells tile the image; an instance (at most 0.45 of its cell's shorter
    side in radius, its corners within 1.02 radius) stays inside its cell.
    """
    height, width = size
    count = instances.shape[1]
    wide = width >= height
    long = width if wide else height
    bounds = [k * long // count for k in range(count + 1)]
    placed = []
    for k in range(count):
        jitter_x, jitter_y, scale, turn, flip = (instances[:, k, j] for j in range(INSTANCE))
        cell = slice(bounds[k], bounds[k + 1])
        rows, columns = (slice(0, height), cell) if wide else (cell, slice(0, width))
        cell_w, cell_h = columns.stop - columns.start, rows.stop - rows.start
        radius = min(cell_w, cell_h) * (0.28 + 0.17 * scale)
        cx = (columns.start + cell_w / 2) + (2 * jitter_x - 1) * np.maximum(0.0, cell_w / 2 - 1.05 * radius - 1)
        cy = (rows.start + cell_h / 2) + (2 * jitter_y - 1) * np.maximum(0.0, cell_h / 2 - 1.05 * radius - 1)
        cos, sin = _rotation(turn, flip)
        placed.append((rows, columns, *(_column(value) for value in (cx, cy, radius, cos, sin))))
    return placed
