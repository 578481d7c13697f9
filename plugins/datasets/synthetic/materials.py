"""What a city cell is made of, and the coarser scene classes used as item labels.

Materials decide how a cell is drawn (texture, which colour layer a view
reads); scene classes fold them into five labels a classifier can learn from
either view, the supervised "ImageNet stand-in" of the benchmark.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Material(IntEnum):
    """The material id stored per cell in :attr:`CityMap.material`."""

    GRASS = 0
    ROAD = 1
    PAVEMENT = 2
    GRAVEL = 3
    WATER = 4
    BUILDING = 5
    TREE = 6
    HEDGE = 7
    CAR = 8


VEGETATION = (Material.GRASS, Material.TREE, Material.HEDGE)

# Indexed by material id: whether the cell is vegetation (a table look-up is much faster than ``np.isin``).
IS_VEGETATION = np.isin(np.arange(len(Material)), VEGETATION)

SCENE_CLASSES = ("road", "building", "vegetation", "water", "plaza")

# Indexed by material id; cars stand on roads, gravel yards read as open paved ground.
SCENE_OF_MATERIAL = np.array([2, 0, 4, 4, 3, 1, 2, 2, 0], dtype=np.uint8)

# Per-cell texture noise amplitude (colour levels) by material id: grass and
# canopies are mottled, roofs and water nearly flat.
TEXTURE_NOISE = np.array([12, 5, 7, 10, 3, 4, 16, 10, 0], dtype=np.int16)
