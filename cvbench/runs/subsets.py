"""A run's data: the dataset plugin opened, its split's subsets loaded and the seeded subsets a run uses.

Training pairs, validation queries and pre-training images are drawn by the
seed alone, so the rows of one seed in a grid share them (the paired design
of ``docs/statistics.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

from ..contract.registry import create
from ..data import ConcatImages, CrossViewDataset, CrossViewPairs, ImageList, load_subset
from ..data.imagecheck import drop_unreadable, image_paths
from ..errors import SpecError
from ..spec import RunSpec


@dataclass
class Data:
    """The resolved split's two subsets and which items of them a run uses."""

    split: str
    train: CrossViewPairs
    val: CrossViewPairs
    train_indices: np.ndarray
    val_queries: np.ndarray


def open_dataset(spec: RunSpec) -> tuple[CrossViewDataset, str]:
    """Build the dataset plugin and settle the split (its first one by default)."""
    root = Path(spec.data_root).expanduser() if spec.data_root else None
    dataset = create("dataset", spec.dataset, root, **spec.data_options)
    splits = list(dataset.splits())
    split = spec.split or splits[0]
    if split not in splits:
        raise SpecError(f"--split {split!r} is not a split of dataset {spec.dataset!r}; it offers: {', '.join(splits)}")
    return dataset, split


def load_data(spec: RunSpec, dataset: CrossViewDataset, split: str, progress: Progress | None = None) -> Data:
    """Load train and val of the split, subsampled by ``max_train_pairs`` / ``max_val_queries`` / ``train_fraction``.

    The subsets depend on the seed alone, so the rows of one seed in a grid
    share their training pairs and validation queries (the paired design of
    ``docs/statistics.md``). With ``bad_images`` "skip", every image is
    decoded first and the pairs with unreadable ones are left out and reported.
    """
    train = load_subset(dataset, split, "train")
    val = load_subset(dataset, split, "val")
    if spec.bad_images == "skip":
        checked: dict = {}
        train = drop_unreadable(train, f"{spec.dataset} {split} train", checked, progress)
        val = drop_unreadable(val, f"{spec.dataset} {split} val", checked, progress)
    rng = np.random.default_rng(spec.seed)
    train_indices = _limit(train.num_queries, spec.max_train_pairs, rng)
    val_queries = _limit(val.num_queries, spec.max_val_queries, rng)
    return Data(split, train, val, labelled_share(train_indices, spec), val_queries)


FRACTION_STREAM = 7_411  # the share's own random stream: the other subsets stay those of the full run


def labelled_share(indices: np.ndarray, spec: RunSpec) -> np.ndarray:
    """The ``train_fraction`` share of the training pairs: the first ``ceil(f n)`` of a seeded permutation.

    The shares of one seed are nested (the 5% pairs are among the 10% ones),
    as a label-efficiency curve needs; fewer pairs than one batch is an error.
    """
    if spec.train_fraction is None or spec.train_fraction >= 1:  # an unresolved spec: the fallback, all pairs
        return indices
    count = math.ceil(spec.train_fraction * len(indices))
    if count < spec.batch_size:
        raise SpecError(f"--train-fraction {spec.train_fraction:g} leaves {count} of {len(indices)} training pairs, "
                        f"fewer than one batch (--batch-size {spec.batch_size}); raise the fraction or lower the "
                        "batch size")
    order = np.random.default_rng([spec.seed, FRACTION_STREAM]).permutation(indices)
    return np.sort(order[:count])


def _limit(count: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= count:
        return np.arange(count)
    return np.sort(rng.choice(count, limit, replace=False))


def pretraining_set(spec: RunSpec, data: Data, branch: str) -> tuple[ImageList, pd.DataFrame, np.ndarray]:
    """The images Table 3.1's column asks for (the branch's view of train, val or both), their metadata, and
    which of them pre-training uses: at most ``max_pretrain_images`` of each subset, drawn by the seed.

    ``all`` therefore sees the images of both subsets, strictly more than
    ``train`` or ``val`` alone (unless one gallery serves both, as in VIGOR's
    same-area split, where each image counts once).
    """
    view = "ground" if branch == "ground" else "aerial"
    chosen = {"train": [data.train], "val": [data.val], "all": [data.train, data.val]}[spec.pretrain_data]
    lists = [getattr(pairs, view) for pairs in chosen]
    metas = [getattr(pairs, f"{view}_meta") for pairs in chosen]
    if len(lists) == 2 and _same_images(*lists):
        lists, metas = lists[:1], metas[:1]  # one gallery serves both subsets (VIGOR same-area): each tile once
    meta = pd.concat(metas, ignore_index=True) if all(len(m.columns) for m in metas) else pd.DataFrame()
    rng = np.random.default_rng(spec.seed)
    offsets = np.cumsum([0] + [len(images) for images in lists[:-1]])
    indices = np.concatenate([offset + _limit(len(images), spec.max_pretrain_images, rng)
                              for images, offset in zip(lists, offsets)])
    return (lists[0] if len(lists) == 1 else ConcatImages(*lists)), meta, indices


def _same_images(first: ImageList, second: ImageList) -> bool:
    if first is second:
        return True
    paths = image_paths(first), image_paths(second)
    return paths[0] is not None and paths[0] == paths[1]
