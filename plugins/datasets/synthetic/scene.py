"""Scene labels: the dominant scene class of the ground around an item.

An item's label is the scene class (see :data:`SCENE_CLASSES`) covering the
most cells of the ``metres`` x ``metres`` square centred on it, as the
satellite shows it; ties go to the class listed first. A query and its
aligned tile cover the same square, so they share their label.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel
from .materials import SCENE_CLASSES, SCENE_OF_MATERIAL


def scene_labels(material: np.ndarray, centres: np.ndarray, metres: float) -> np.ndarray:
    """Scene class index per centre ``(N, 2)`` (x east, y north) from a material map."""
    size = material.shape[0]
    # Integral images of each class's cell count: any square's count in four look-ups.
    counts = np.zeros((len(SCENE_CLASSES), size + 1, size + 1), np.int32)  # exact up to 46,000 cells a side
    count_scenes(np.ascontiguousarray(material), SCENE_OF_MATERIAL, counts)
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    half = metres / 2
    col0 = np.clip(np.round(centres[:, 0] - half), 0, size).astype(np.int64)
    col1 = np.clip(np.round(centres[:, 0] + half), 0, size).astype(np.int64)
    row0 = np.clip(np.round(size - centres[:, 1] - half), 0, size).astype(np.int64)
    row1 = np.clip(np.round(size - centres[:, 1] + half), 0, size).astype(np.int64)
    inside = counts[:, row1, col1] - counts[:, row0, col1] - counts[:, row1, col0] + counts[:, row0, col0]
    return inside.argmax(axis=0)


@kernel("void(uint8[:, ::1], uint8[::1], int32[:, :, ::1])")
def count_scenes(material, scene_of_material, counts):
    """``counts[k, r, c]``: the cells of scene class ``k`` above row ``r`` and left of column ``c`` (an integral image).

    ``counts`` comes zeroed, one row and one column larger than ``material``.
    One pass over the map for all classes; integer sums are exact in any order.
    """
    classes = counts.shape[0]
    in_row = np.zeros(classes, np.int32)
    for r in range(material.shape[0]):
        in_row[:] = 0
        for c in range(material.shape[1]):
            in_row[scene_of_material[material[r, c]]] += 1
            for k in range(classes):
                counts[k, r + 1, c + 1] = counts[k, r, c + 1] + in_row[k]


def scene_names(labels: np.ndarray) -> list[str]:
    """Class names for class indices."""
    return [SCENE_CLASSES[int(k)] for k in labels]
