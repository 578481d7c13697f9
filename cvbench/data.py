"""The dataset contract: what a dataset plugin hands the engine.

A dataset plugin's factory returns a :class:`CrossViewDataset`. It names the
benchmark protocols it offers (``splits()``, e.g. VIGOR's ``same_area`` and
``cross_area``) and, for each, a ``train`` and a ``val`` subset of
:class:`CrossViewPairs`: ground queries, aerial references, the index of each
query's true match, and VIGOR-style semi-positives where they exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from .errors import CvbenchError, SpecError

SUBSETS = ("train", "val")


@runtime_checkable
class ImageList(Protocol):
    """A random-access list of RGB images: ``images[i]`` is uint8 ``(H, W, 3)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...


class ArrayImages:
    """Images held in one uint8 array ``(N, H, W, 3)`` (in memory or memory-mapped)."""

    def __init__(self, array: np.ndarray) -> None:
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array (N, H, W, 3), got {array.dtype} {array.shape}")
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.array[index])


class FileImages:
    """Images read from files on demand with Pillow; a corrupt file names itself."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except FileNotFoundError:
            raise CvbenchError(f"image file is missing: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise CvbenchError(f"cannot read image {path}: {exc} (expected a readable JPEG or PNG)") from None


@dataclass
class CrossViewPairs:
    """One subset of a protocol: N ground queries against M aerial references.

    ``positives[i]`` is the index in ``aerial`` of query i's true match.
    ``semi_positives`` (N, K), padded with -1, lists other references that also
    cover query i (VIGOR); ``None`` where a dataset has none.
    ``ground_meta`` (N rows) and ``aerial_meta`` (M rows) hold per-item metadata;
    columns ``city``, ``x`` and ``y`` (metres in a local frame, or ``lat``/``lon``)
    are used by the analysis where present.
    """

    ground: ImageList
    aerial: ImageList
    positives: np.ndarray
    semi_positives: np.ndarray | None = None
    ground_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    aerial_meta: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.positives = np.asarray(self.positives, dtype=np.int64)
        n, m = len(self.ground), len(self.aerial)
        if self.positives.shape != (n,):
            raise ValueError(f"positives must have shape ({n},) for {n} ground images, got {self.positives.shape}")
        if n and (self.positives.min() < 0 or self.positives.max() >= m):
            raise ValueError(f"positives must index the {m} aerial images, got values in "
                             f"[{self.positives.min()}, {self.positives.max()}]")
        if self.semi_positives is not None:
            self.semi_positives = np.asarray(self.semi_positives, dtype=np.int64)
            if self.semi_positives.ndim != 2 or len(self.semi_positives) != n:
                raise ValueError(f"semi_positives must have shape ({n}, K), got {self.semi_positives.shape}")
            if self.semi_positives.size and self.semi_positives.max() >= m:
                raise ValueError("semi_positives index past the aerial images")
        for name, meta, size in (("ground_meta", self.ground_meta, n), ("aerial_meta", self.aerial_meta, m)):
            if len(meta.columns) and len(meta) != size:
                raise ValueError(f"{name} has {len(meta)} rows, expected {size}")

    @property
    def num_queries(self) -> int:
        return len(self.ground)

    @property
    def num_references(self) -> int:
        return len(self.aerial)


@runtime_checkable
class CrossViewDataset(Protocol):
    """What a dataset plugin's factory returns."""

    def splits(self) -> list[str]:
        """The protocols this dataset offers, the first being the default."""
        ...

    def load(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` or ``val`` subset of protocol ``split``."""
        ...


def load_subset(dataset: CrossViewDataset, split: str, subset: str) -> CrossViewPairs:
    """Load a subset, failing with the dataset's protocols named when ``split`` is not one."""
    available = list(dataset.splits())
    if split not in available:
        raise SpecError(f"--split {split!r} is not a split of this dataset; it offers: {', '.join(available)}")
    if subset not in SUBSETS:
        raise SpecError(f"subset must be one of {SUBSETS}, got {subset!r}")
    return dataset.load(split, subset)


class ConcatImages:
    """Several image lists read as one (pre-training on the ``all`` split)."""

    def __init__(self, *lists: ImageList) -> None:
        self.lists = lists
        self.offsets = np.cumsum([0] + [len(images) for images in lists])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        which = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.lists[which][index - int(self.offsets[which])]
