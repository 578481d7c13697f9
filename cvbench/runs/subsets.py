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
from ..errors import DatasetFormatError, SpecError
from ..spec import RunSpec


@dataclass
class Data:
    """The resolved split's two subsets and which items of them a run uses.

    ``val`` is the evaluation protocol's: the ``val`` subset of ``split``, or
    of another dataset or split (``--eval-dataset``, ``--eval-split``),
    named by ``evaluated_on`` (dataset, split).
    """

    split: str
    train: CrossViewPairs
    val: CrossViewPairs
    train_indices: np.ndarray
    val_queries: np.ndarray
    evaluated_on: tuple[str, str] = ("", "")


def open_dataset(spec: RunSpec) -> tuple[CrossViewDataset, str]:
    """Build the dataset plugin and settle the split (its first one by default)."""
    root = Path(spec.data_root).expanduser() if spec.data_root else None
    dataset = create("dataset", spec.dataset, root, **spec.data_options)
    return dataset, _settle_split(dataset, spec.split, spec.dataset, "--split")


def _settle_split(dataset: CrossViewDataset, split: str | None, name: str, option: str) -> str:
    splits = list(dataset.splits())
    split = split or splits[0]
    if split not in splits:
        raise SpecError(f"{option} {split!r} is not a split of dataset {name!r}; it offers: {', '.join(splits)}")
    return split


def transfers(spec: RunSpec) -> bool:
    """Whether the run evaluates on another dataset, split or folder than it trains on."""
    return (spec.eval_dataset not in (None, spec.dataset) or spec.eval_data_root is not None
            or bool(spec.eval_data_options) or spec.eval_split not in (None, spec.split))


def open_evaluation(spec: RunSpec, dataset: CrossViewDataset, split: str) -> tuple[CrossViewDataset, str, str]:
    """The dataset and split evaluation uses, and the dataset's name: the training ones unless the run transfers.

    Another dataset is built from ``--eval-data-root`` and
    ``--eval-data-option`` (the training folder and options when it is the
    same plugin and none are given); a split it lacks is named with the
    ones it has, before any work.
    """
    if not transfers(spec):
        return dataset, split, spec.dataset
    name = spec.eval_dataset or spec.dataset
    same = name == spec.dataset
    if same and spec.eval_data_root is None and not spec.eval_data_options:
        other = dataset
    else:
        options = spec.eval_data_options or (spec.data_options if same and spec.eval_data_root is None else {})
        other = create("dataset", name, evaluation_root(spec), **options)
    default = split if same and spec.eval_split is None else spec.eval_split
    return other, _settle_split(other, default, name, "--eval-split"), name


def evaluation_root(spec: RunSpec) -> Path | None:
    """The data root evaluation reads: ``--eval-data-root``, else ``--data-root`` when it is the same dataset."""
    same = spec.eval_dataset in (None, spec.dataset)
    root = spec.eval_data_root or (spec.data_root if same else None)
    return Path(root).expanduser() if root else None


def load_data(spec: RunSpec, dataset: CrossViewDataset, split: str, progress: Progress | None = None) -> Data:
    """Load train of the split and the evaluation protocol's val, subsampled by ``max_train_pairs`` /
    ``max_val_queries`` / ``train_fraction``.

    The subsets depend on the seed alone, so the rows of one seed in a grid
    share their training pairs and validation queries (the paired design of
    ``docs/statistics.md``). With ``bad_images`` "skip", every image is
    decoded first and the pairs with unreadable ones are left out and reported.
    """
    evaluation, eval_split, eval_name = open_evaluation(spec, dataset, split)
    train = load_subset(dataset, split, "train")
    val = load_subset(evaluation, eval_split, "val")
    if spec.bad_images == "skip":
        checked: dict = {}
        train = drop_unreadable(train, f"{spec.dataset} {split} train", checked, progress)
        val = drop_unreadable(val, f"{eval_name} {eval_split} val", checked, progress)
    if train.query_view != "ground":
        raise DatasetFormatError(f"{spec.dataset} {split} train pairs query with {train.query_view} images; "
                                 "fine-tuning needs ground images paired with their aerial positive "
                                 "(query_view 'ground')")
    rng = np.random.default_rng(spec.seed)
    train_indices = _limit(train.num_queries, spec.max_train_pairs, rng)
    val_queries = _limit(val.num_queries, spec.max_val_queries, rng)
    return Data(split, train, val, labelled_share(train_indices, spec), val_queries, (eval_name, eval_split))


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
