"""A tiny learnable dataset for harness tests that must not depend on a built-in plugin.

Pair i is a random 4x4 colour grid: the tile shows it from above, the
panorama shows its rows unrolled, so a network can learn the link quickly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvbench.contract.hookspecs import hookimpl
from cvbench.data import ArrayImages, CrossViewPairs


class Toy:
    """``splits() == ["toy"]``; ``train`` and ``val`` of ``size`` pairs each."""

    def __init__(self, root=None, size: int = 48, seed: int = 0) -> None:
        self.size, self.seed = size, seed

    def splits(self) -> list[str]:
        return ["toy", "toy_semi"]

    def load(self, split: str, subset: str) -> CrossViewPairs:
        rng = np.random.default_rng(self.seed + (subset == "val"))
        grids = rng.integers(0, 256, (self.size, 4, 4, 3), dtype=np.uint8)
        tiles = grids.repeat(8, axis=1).repeat(8, axis=2)
        panos = grids.reshape(self.size, 1, 16, 3).repeat(16, axis=1).repeat(4, axis=2)
        semi = None
        if split == "toy_semi":
            semi = np.stack([(np.arange(self.size) + 1) % self.size, np.full(self.size, -1)], axis=1)
        meta = pd.DataFrame({"city": ["toyville"] * self.size, "x": np.arange(self.size, dtype=float),
                             "y": np.zeros(self.size)})
        return CrossViewPairs(ArrayImages(panos), ArrayImages(tiles), np.arange(self.size), semi, meta, meta.copy())


class ToyPlugin:
    @hookimpl
    def register_datasets(self, register):
        register("toy", Toy, summary="random colour grids (tests)")
