"""Batches of fine-tuning pairs: the fill rule samplers share, and the engine's per-epoch plan around a sampler.

Where several queries share a tile, or a tile is a semi-positive of another
query (VIGOR), putting both in one batch would push a true match away as a
negative (thesis section 3.2). :func:`fill_batches` fills batches in a given
order with items whose tiles are all new to the batch, optionally pulling
each item's chosen companions (its GPS neighbours, its hard negatives) into
the same batch; the sampler plugins (``--sampler``) decide the order and the
companions. :class:`EpochBatches` asks the sampler for each epoch's plan,
keeps it in the training state for ``--resume``, and times the plans that
read the model (the mining cost).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler as TorchSampler

from ..errors import PluginError
from ..nn import distributed
from ..nn.distributed import shard_batches


def fill_batches(order: Sequence[int], conflicts: Sequence[Sequence[int]], batch_size: int,
                 companions: Callable[[int], Sequence[int]] | None = None, drop_last: bool = True) -> list[list[int]]:
    """Batches of items in ``order`` such that no two items of a batch share a tile; each item at most once.

    Each item that fits opens or joins the current batch, then pulls in
    ``companions(item)`` that fit, in their order, while there is room. An
    item that clashes waits for a later batch; when a whole pass over the
    waiting items adds nothing, the current batch closes early (kept if it
    holds two or more items, or always without ``drop_last``). The last,
    smaller batch of an epoch is dropped when ``drop_last``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batches: list[list[int]] = []
    batch: list[int] = []
    used: set[int] = set()
    placed: set[int] = set()

    def add(item: int) -> None:
        nonlocal batch, used
        batch.append(item)
        used.update(conflicts[item])
        placed.add(item)
        if len(batch) == batch_size:
            batches.append(batch)
            batch, used = [], set()

    pending = list(order)
    while pending:
        waiting: list[int] = []
        for item in pending:
            if item in placed:
                continue
            if not used.isdisjoint(conflicts[item]):
                waiting.append(item)
                continue
            add(item)
            if companions is not None and batch:
                for other in companions(item):
                    if not batch:
                        break  # the batch closed: companions join the item's own batch only
                    if other not in placed and used.isdisjoint(conflicts[other]):
                        add(other)
        waiting = [item for item in waiting if item not in placed]
        if len(waiting) == len(pending):  # every waiting item clashes with this batch: close it
            if len(batch) > 1 or not drop_last:
                batches.append(batch)
            batch, used = [], set()
        pending = waiting
    if batch and not drop_last:
        batches.append(batch)
    return batches


def tiles_per_query(positives: np.ndarray, semi_positives: np.ndarray | None) -> list[tuple[int, ...]]:
    """Each query's positive plus its semi-positives (the -1 padding dropped)."""
    if semi_positives is None:
        return [(int(p),) for p in positives]
    return [(int(p), *(int(s) for s in row if s >= 0)) for p, row in zip(positives, semi_positives)]


class EpochBatches(TorchSampler[list[int]]):
    """The batches a sampler plugin plans for each epoch, checked, kept for ``--resume`` and timed.

    :meth:`prepare` (before an epoch's batches are drawn) asks the sampler
    for the epoch's plan with ``batching(epoch)``; a state restored mid-epoch
    serves the saved plan instead and puts the generator where planning left
    it, so a resumed epoch gets the batches of the uninterrupted one even
    when the plan read a model that has trained since. ``seconds`` sums the
    time of plans that mine (the sampler's ``mines``).
    """

    def __init__(self, sampler: Any, name: str, batching: Callable[[int], Any], generator: torch.Generator,
                 items: int, batch_size: int) -> None:
        self.sampler = sampler
        self.name = name
        self.batching = batching
        self.generator = generator
        self.items = items
        self.batch_size = batch_size
        self.batches: list[list[int]] = []
        self.epoch = 0
        self.seconds = 0.0
        self._restored: dict[str, Any] | None = None

    def prepare(self, epoch: int) -> None:
        """Plan ``epoch`` (or take the restored plan of an interrupted one)."""
        restored, self._restored = self._restored, None
        if restored is not None and int(restored["epoch"]) == epoch:
            self.batches = [list(map(int, batch)) for batch in restored["batches"]]
            self.generator.set_state(restored["generator"])
            self.seconds = float(restored["seconds"])
            self.epoch = epoch
            return
        started = time.perf_counter()
        planned = self.sampler.plan(self.batching(epoch))
        if self.sampler.mines:
            self.seconds += time.perf_counter() - started
        self.batches = self._same_on_every_rank(self._checked(planned), epoch)
        self.epoch = epoch

    def _same_on_every_rank(self, batches: list[list[int]], epoch: int) -> list[list[int]]:
        """Under DDP, rank 0's plan, after checking this rank planned the same (else each rank's shard of a
        "batch" would come from different batches, and the loss's negatives with them)."""
        if not distributed.active():
            return batches
        agreed = distributed.broadcast_object(batches)
        if agreed != batches:
            raise PluginError(f"sampler {self.name!r} planned different batches for epoch {epoch} on rank "
                              f"{distributed.rank()} than on rank 0; a sampler must draw every random choice from "
                              "batching.generator (seeded alike on every rank), not from Python's, NumPy's or "
                              "torch's global generators")
        return agreed

    def _checked(self, planned: Any) -> list[list[int]]:
        """The plan as lists of ints, or a :class:`PluginError` naming the sampler and what is wrong."""
        try:
            batches = [[int(item) for item in batch] for batch in planned]
        except (TypeError, ValueError):
            raise PluginError(f"sampler {self.name!r} planned {type(planned).__name__}; expected a list of batches, "
                              "each a list of item positions") from None
        seen: set[int] = set()
        for number, batch in enumerate(batches):
            if len(batch) > self.batch_size or not batch:
                raise PluginError(f"sampler {self.name!r}: batch {number} has {len(batch)} items; expected 1 to "
                                  f"{self.batch_size}")
            bad = [item for item in batch if not 0 <= item < self.items or item in seen]
            if bad:
                raise PluginError(f"sampler {self.name!r}: batch {number} holds item {bad[0]}, out of range for "
                                  f"{self.items} items or already used this epoch")
            seen.update(batch)
        if not batches:
            raise PluginError(f"sampler {self.name!r} planned no batch for {self.items} training items")
        return batches

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batches": self.batches, "generator": self.generator.get_state(),
                "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class ShardedBatchSampler(TorchSampler[list[int]]):
    """This rank's share of each planned batch (see :func:`cvbench.nn.distributed.shard_batches`).

    Every rank plans with an identically seeded generator, so all hold the
    same batches and together cover each one.
    """

    def __init__(self, batches: EpochBatches) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(shard_batches(list(self.batches)))

    def __len__(self) -> int:
        return len(shard_batches(list(self.batches)))


class SkipBatches(TorchSampler[list[int]]):
    """A batch sampler whose next epoch leaves out its first ``skip`` batches: the ones a resumed run had done.

    The skipped batches are drawn (the data order stays that of the
    uninterrupted run) but never loaded.
    """

    def __init__(self, batches: TorchSampler[list[int]]) -> None:
        self.batches = batches
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for number, batch in enumerate(self.batches):
            if number >= skip:
                yield batch

    def __len__(self) -> int:
        return max(len(self.batches) - self.skip, 0)
