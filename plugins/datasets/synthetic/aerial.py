"""Satellite view: the whole city lit once from above, then tiles cropped from it.

The image is the top colour shaded by the height map's surface normals
(hillshade: gable roofs and tree domes show a lit and a dark side) and
darkened in cast shadows. Tiles are north up with ``x`` east along columns;
a tile centred on ``(x, y)`` covers ``metres`` x ``metres`` and is resampled
bilinearly, with supersampling when a pixel spans more than one cell.
"""

from __future__ import annotations

import math

import numpy as np

from .lighting import LitCity, surface_normals
from .resample import sample_tiles, to_levels


def satellite_image(lit: LitCity) -> np.ndarray:
    """The lit city seen from straight above: float32 ``(S, S, 3)`` colour levels."""
    light = lit.light
    normals = surface_normals(lit.city.height)
    east, north, up = (np.float32(c) for c in light.sun)
    facing = np.maximum(normals[..., 0] * east + normals[..., 1] * north + normals[..., 2] * up, 0)
    level = np.float32(light.ambient) + np.float32(light.direct) * facing * (~lit.shadow).astype(np.float32)
    return lit.city.top.astype(np.float32) * level[..., None]


def crop_tiles(image: np.ndarray, centres: np.ndarray, metres: float, size: int) -> np.ndarray:
    """uint8 tiles ``(N, size, size, 3)`` centred on ``centres`` ``(N, 2)`` (x east, y north, metres).

    Points beyond the map take the colour of its nearest edge cell.
    """
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    pixel = metres / size
    samples = max(1, math.ceil(pixel - 1e-9))
    offsets = (np.arange(size * samples, dtype=np.float64) + 0.5) * (pixel / samples) - metres / 2
    x = centres[:, 0, None] + offsets[None, :]            # (N, size * samples), west to east
    y = centres[:, 1, None] - offsets[None, :]            # (N, size * samples), north to south
    rows, cols = image.shape[:2]
    row0, row_weight = _cell_weights(rows - y, rows)
    col0, col_weight = _cell_weights(x, cols)
    fine = np.empty((len(centres), size * samples, size * samples, image.shape[2]), np.float32)
    sample_tiles(np.ascontiguousarray(image, np.float32), row0, row_weight, col0, col_weight, fine)
    if samples > 1:
        n = len(centres)
        fine = fine.reshape(n, size, samples, size, samples, 3).mean(axis=(2, 4))
    tiles = np.empty(fine.shape, np.uint8)
    to_levels(np.ascontiguousarray(fine).reshape(-1), tiles.reshape(-1))
    return tiles


def _cell_weights(position: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """For positions along one axis of the map (metres from its first edge), the cell before and the next one's weight.

    Interpolation is between cell centres; beyond the outer centres it takes
    the edge cell's value.
    """
    f = np.clip(position - 0.5, 0, cells - 1)
    first = np.minimum(np.floor(f).astype(np.int64), cells - 2)
    return first, (f - first).astype(np.float32)
