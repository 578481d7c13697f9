"""Batches without ambiguous negatives (thesis section 3.2).

Where several queries share a tile, or a tile is a semi-positive of another
query (VIGOR), putting both in one batch would push a true match away as a
negative. The sampler shuffles the queries each epoch and fills each batch
with queries whose tiles (positive and semi-positives) are all new to it;
a query that conflicts waits for a later batch.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from ..nn.distributed import shard_batches


class ConflictFreeBatchSampler(Sampler[list[int]]):
    """Yield batches of item indices such that no two items share a tile.

    ``tiles[i]`` is the set of reference indices item ``i`` must not share
    (its positive and semi-positives). The order is drawn from ``generator``,
    so the same seed gives the same batches. A batch that no waiting item fits
    any more is closed early; the last, smaller batch of an epoch is dropped
    when ``drop_last``. Early closes make the number of batches depend on the
    draw, so ``len()`` draws the coming epoch and ``iter()`` then serves it:
    the same draws, in the same order, as without asking.
    """

    def __init__(self, tiles: Sequence[Sequence[int]], batch_size: int, generator: torch.Generator,
                 drop_last: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.tiles = [tuple(int(t) for t in group if t >= 0) for group in tiles]
        self.batch_size = batch_size
        self.generator = generator
        self.drop_last = drop_last
        self._planned: list[list[int]] | None = None

    def _draw_epoch(self) -> list[list[int]]:
        """One epoch's batches, drawing the order from the generator."""
        batches: list[list[int]] = []
        order = torch.randperm(len(self.tiles), generator=self.generator).tolist()
        waiting: list[int] = []
        batch: list[int] = []
        used: set[int] = set()
        pending = order
        while pending:
            for item in pending:
                tiles = self.tiles[item]
                if used.isdisjoint(tiles):
                    batch.append(item)
                    used.update(tiles)
                    if len(batch) == self.batch_size:
                        batches.append(batch)
                        batch, used = [], set()
                else:
                    waiting.append(item)
            if len(waiting) == len(pending):  # every waiting item clashes with this batch: close it
                if len(batch) > 1 or not self.drop_last:
                    batches.append(batch)
                batch, used = [], set()
            pending, waiting = waiting, []
        if batch and not self.drop_last:
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._planned if self._planned is not None else self._draw_epoch()
        self._planned = None
        return iter(batches)

    def __len__(self) -> int:
        """The exact number of batches of the coming epoch (drawn now, then served by ``__iter__``)."""
        return len(self.planned())

    def planned(self) -> list[list[int]]:
        """The coming epoch's batches, drawn now if not yet drawn; ``__iter__`` then serves these."""
        if self._planned is None:
            self._planned = self._draw_epoch()
        return self._planned


def tiles_per_query(positives: np.ndarray, semi_positives: np.ndarray | None) -> list[tuple[int, ...]]:
    """Each query's positive plus its semi-positives (the -1 padding dropped)."""
    if semi_positives is None:
        return [(int(p),) for p in positives]
    return [(int(p), *(int(s) for s in row if s >= 0)) for p, row in zip(positives, semi_positives)]


class ShardedBatchSampler(Sampler[list[int]]):
    """This rank's share of each batch a :class:`ConflictFreeBatchSampler` draws (see :func:`cvbench.nn.distributed.shard_batches`).

    Every rank holds an identically seeded sampler, so all draw the same
    batches and together cover each one.
    """

    def __init__(self, sampler: ConflictFreeBatchSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[int]]:
        return iter(shard_batches(list(self.sampler)))

    def __len__(self) -> int:
        return len(shard_batches(self.sampler.planned()))


class SkipBatches(Sampler[list[int]]):
    """A batch sampler whose next epoch leaves out its first ``skip`` batches: the ones a resumed run had done.

    The skipped batches are drawn (the data order stays that of the
    uninterrupted run) but never loaded.
    """

    def __init__(self, batches: Sampler[list[int]]) -> None:
        self.batches = batches
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for number, batch in enumerate(self.batches):
            if number >= skip:
                yield batch

    def __len__(self) -> int:
        return max(len(self.batches) - self.skip, 0)
