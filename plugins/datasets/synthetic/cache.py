"""The on-disk cache of generated subsets, written atomically.

Layout: ``<root>/<key>/options.json`` and, per subset,
``<root>/<key>/<split>/<subset>/`` holding ``ground.npy`` ``(N, H, W, 3)``,
``aerial.npy`` ``(M, T, T, 3)``, ``positives.npy``, ``semi_positives.npy``
(offset layout only), ``ground.csv``, ``aerial.csv`` and, written last,
``index.json``. ``<key>`` hashes every option and the generator version.
Each file goes to a temporary name in the same folder and is moved into
place with ``os.replace`` (:mod:`cvbench.atomic`); a subset counts as
cached only once its ``index.json`` exists, so an interrupted generation is
simply redone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cvbench.atomic import atomic_path, write_json, write_text
from cvbench.data import ArrayImages, CrossViewPairs

from .generate import SubsetArrays
from .options import GENERATOR_VERSION, SyntheticOptions


def cache_root(root: Path | str | None) -> Path:
    """``root`` if given, else ``$CVBENCH_CACHE/synthetic``, else ``~/.cache/cvbench/synthetic``."""
    if root is not None:
        return Path(root)
    if os.environ.get("CVBENCH_CACHE"):
        return Path(os.environ["CVBENCH_CACHE"]) / "synthetic"
    return Path.home() / ".cache" / "cvbench" / "synthetic"


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            np.save(file, array, allow_pickle=False)


class SyntheticCache:
    """The cache folder of one set of options."""

    def __init__(self, root: Path, options: SyntheticOptions) -> None:
        self.options = options
        self.folder = root / options.cache_key()

    def subset_folder(self, split: str, subset: str) -> Path:
        return self.folder / split / subset

    def has(self, split: str, subset: str) -> bool:
        return (self.subset_folder(split, subset) / "index.json").is_file()

    def write(self, split: str, subset: str, arrays: SubsetArrays) -> None:
        """Store one subset; its ``index.json`` goes last and marks it complete."""
        write_json(self.folder / "options.json",
                   {"generator_version": GENERATOR_VERSION, **self.options.canonical()})
        folder = self.subset_folder(split, subset)
        save_array(folder / "ground.npy", arrays.ground)
        save_array(folder / "aerial.npy", arrays.aerial)
        save_array(folder / "positives.npy", arrays.positives.astype(np.int64))
        if arrays.semi_positives is not None:
            save_array(folder / "semi_positives.npy", arrays.semi_positives.astype(np.int64))
        write_text(folder / "ground.csv", arrays.ground_meta.to_csv(index=False))
        write_text(folder / "aerial.csv", arrays.aerial_meta.to_csv(index=False))
        index = {"generator_version": GENERATOR_VERSION, "split": split, "subset": subset,
                 "queries": len(arrays.ground), "references": len(arrays.aerial),
                 "semi_positives": arrays.semi_positives is not None}
        write_json(folder / "index.json", index)

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """A cached subset, images memory-mapped."""
        folder = self.subset_folder(split, subset)
        index = json.loads((folder / "index.json").read_text())
        semi = np.load(folder / "semi_positives.npy") if index["semi_positives"] else None
        return CrossViewPairs(
            ground=ArrayImages(np.load(folder / "ground.npy", mmap_mode="r")),
            aerial=ArrayImages(np.load(folder / "aerial.npy", mmap_mode="r")),
            positives=np.load(folder / "positives.npy"), semi_positives=semi,
            ground_meta=pd.read_csv(folder / "ground.csv", dtype={"city": str, "style": str, "scene": str}),
            aerial_meta=pd.read_csv(folder / "aerial.csv", dtype={"city": str, "style": str, "scene": str}))
