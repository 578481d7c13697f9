"""The dataset contract: what a dataset plugin hands the engine.

A dataset plugin's factory returns a :class:`CrossViewDataset`. It names the
benchmark protocols it offers (``splits()``, e.g. VIGOR's ``same_area`` and
``cross_area``) and, for each, a ``train`` and a ``val`` subset of
:class:`CrossViewPairs`: ground queries, aerial references, the index of each
query's true match, and VIGOR-style semi-positives where they exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from ..errors import DatasetFormatError, SpecError
from .images import ImageList, take_images
from .problems import collecting

SUBSETS = ("train", "val")


QUERY_VIEWS = ("ground", "aerial")


@dataclass
class CrossViewPairs:
    """One subset of a protocol: N queries of one view against a gallery of M images of the other.

    By default (``query_view="ground"``) the ``ground`` images are the queries
    and the ``aerial`` images the gallery; ``query_view="aerial"`` turns the
    protocol round (University-1652's satellite-to-drone: each satellite
    image is a query, the drone images the gallery). ``positives[i]`` is the
    gallery index of query i's true match. ``semi_positives`` (N, K), padded
    with -1, lists other gallery images that also cover query i (VIGOR);
    ``None`` where a dataset has none. ``also_correct`` (N, K), padded with
    -1, lists gallery images other than the positive whose retrieval also
    counts as correct (CVACT_test: tiles within 25 m of the query;
    University-1652: every drone image of the building); ``None`` for
    one-to-one protocols. ``ground_meta`` and ``aerial_meta`` hold one row of
    metadata per image of their view; columns ``city``, ``x`` and ``y``
    (metres in a local frame, or ``lat``/``lon``) are used where present.
    """

    ground: ImageList
    aerial: ImageList
    positives: np.ndarray
    semi_positives: np.ndarray | None = None
    ground_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    aerial_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    also_correct: np.ndarray | None = None
    query_view: str = "ground"

    def __post_init__(self) -> None:
        if self.query_view not in QUERY_VIEWS:
            raise ValueError(f"query_view must be one of {', '.join(QUERY_VIEWS)}, got {self.query_view!r}")
        self.positives = np.asarray(self.positives, dtype=np.int64)
        n, m = self.num_queries, self.num_references
        queries, gallery = self.query_view, self.gallery_view
        if self.positives.shape != (n,):
            raise ValueError(f"positives must have shape ({n},) for {n} {queries} queries, got {self.positives.shape}")
        if n and (self.positives.min() < 0 or self.positives.max() >= m):
            raise ValueError(f"positives must index the {m} {gallery} images, got values in "
                             f"[{self.positives.min()}, {self.positives.max()}]")
        for name in ("semi_positives", "also_correct"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.int64)
            if value.ndim != 2 or len(value) != n:
                raise ValueError(f"{name} must have shape ({n}, K), got {value.shape}")
            if value.size and (value.max() >= m or value.min() < -1):
                raise ValueError(f"{name} must index the {m} {gallery} images or be -1 (padding)")
            setattr(self, name, value)
        for name, meta, size in (("ground_meta", self.ground_meta, len(self.ground)),
                                 ("aerial_meta", self.aerial_meta, len(self.aerial))):
            if len(meta.columns) and len(meta) != size:
                raise ValueError(f"{name} has {len(meta)} rows, expected {size}")

    @property
    def gallery_view(self) -> str:
        """The view of the gallery: the one the queries are not."""
        return "aerial" if self.query_view == "ground" else "ground"

    @property
    def queries(self) -> ImageList:
        return self.ground if self.query_view == "ground" else self.aerial

    @property
    def gallery(self) -> ImageList:
        return self.aerial if self.query_view == "ground" else self.ground

    @property
    def query_meta(self) -> pd.DataFrame:
        return self.ground_meta if self.query_view == "ground" else self.aerial_meta

    @property
    def gallery_meta(self) -> pd.DataFrame:
        return self.aerial_meta if self.query_view == "ground" else self.ground_meta

    @property
    def num_queries(self) -> int:
        return len(self.queries)

    @property
    def num_references(self) -> int:
        return len(self.gallery)

    def select(self, queries: Sequence[int] | None = None, references: Sequence[int] | None = None) -> "CrossViewPairs":
        """These pairs restricted to some queries and gallery images (sorted indices), re-indexed.

        A query whose positive is not kept is dropped; semi-positives and
        ``also_correct`` entries that are not kept are removed from their rows.
        """
        query_ids = np.arange(self.num_queries) if queries is None else np.asarray(queries, dtype=np.int64)
        ref_ids = np.arange(self.num_references) if references is None else np.asarray(references, dtype=np.int64)
        new_index = np.full(self.num_references + 1, -1, dtype=np.int64)  # the extra slot maps the -1 padding
        new_index[ref_ids] = np.arange(len(ref_ids))
        query_ids = query_ids[new_index[self.positives[query_ids]] >= 0]

        def remap(table: np.ndarray | None) -> np.ndarray | None:
            if table is None:
                return None
            mapped = new_index[table[query_ids]]
            order = np.argsort(mapped < 0, axis=1, kind="stable")  # kept entries first, in their order
            mapped = np.take_along_axis(mapped, order, axis=1)
            width = int((mapped >= 0).sum(axis=1).max()) if len(mapped) else 0
            return mapped[:, :width]

        def rows(meta: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
            return meta.iloc[ids].reset_index(drop=True) if len(meta.columns) else meta

        ground_ids, aerial_ids = (query_ids, ref_ids) if self.query_view == "ground" else (ref_ids, query_ids)
        return CrossViewPairs(
            ground=take_images(self.ground, ground_ids),
            aerial=take_images(self.aerial, aerial_ids),
            positives=new_index[self.positives[query_ids]],
            semi_positives=remap(self.semi_positives),
            ground_meta=rows(self.ground_meta, ground_ids),
            aerial_meta=rows(self.aerial_meta, aerial_ids),
            also_correct=remap(self.also_correct),
            query_view=self.query_view,
        )


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
    pairs = dataset.load(split, subset)
    if pairs.num_queries == 0 and not collecting():  # ``data check`` reports it beside the dataset's own problems
        raise DatasetFormatError(empty_subset(dataset, split, subset))
    return pairs


def empty_subset(dataset: CrossViewDataset, split: str, subset: str) -> str:
    """The error for a subset without queries, for datasets that do not name the empty file themselves."""
    describe = getattr(dataset, "describe", None)
    name = describe() if callable(describe) else f"the {type(dataset).__name__.lower()} dataset"
    return (f"{name}: split {split!r}, subset {subset!r} has no queries; expected at least one "
            "(`cvbench data check` shows what its files hold)")
