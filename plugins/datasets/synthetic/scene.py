"""Scene labels: the dominant scene class of the ground around an item.

An item's label is the scene class (see :data:`SCENE_CLASSES`) covering the
most cells of the ``metres`` x ``metres`` square centred on it, as the
satellite shows it; ties go to the class listed first. A query and its
aligned tile cover the same square, so they share their label.
"""

from __future__ import annotations

import numpy as np

from .materials import SCENE_CLASSES, SCENE_OF_MATERIAL


def scene_labels(material: np.ndarray, centres: np.ndarray, metres: float) -> np.ndarray:
    """Scene class index per centre ``(N, 2)`` (x east, y north) from a material map."""
    size = material.shape[0]
    scene = SCENE_OF_MATERIAL[material]
    # Integral images of each class's cell count: any square's count in four look-ups.
    counts = np.zeros((len(SCENE_CLASSES), size + 1, size + 1), np.int32)  # exact up to 46,000 cells a side
    for k in range(len(SCENE_CLASSES)):
        counts[k, 1:, 1:] = (scene == k).cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32)
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    half = metres / 2
    col0 = np.clip(np.round(centres[:, 0] - half), 0, size).astype(np.int64)
    col1 = np.clip(np.round(centres[:, 0] + half), 0, size).astype(np.int64)
    row0 = np.clip(np.round(size - centres[:, 1] - half), 0, size).astype(np.int64)
    row1 = np.clip(np.round(size - centres[:, 1] + half), 0, size).astype(np.int64)
    inside = counts[:, row1, col1] - counts[:, row0, col1] - counts[:, row1, col0] + counts[:, row0, col0]
    return inside.argmax(axis=0)


def scene_names(labels: np.ndarray) -> list[str]:
    """Class names for class indices."""
    return [SCENE_CLASSES[int(k)] for k in labels]
