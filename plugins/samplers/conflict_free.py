"""``conflict_free``: a shuffled order, batches with no two pairs sharing a tile (thesis section 3.2; the default)."""

from __future__ import annotations

import torch

from cvbench import Batching, Sampler
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.data.sampling import fill_batches


class ConflictFree(Sampler):
    """Shuffle the pairs each epoch; a pair whose tile (or semi-positive) is already in the batch waits."""

    def plan(self, batching: Batching) -> list[list[int]]:
        order = torch.randperm(len(batching.conflicts), generator=batching.generator).tolist()
        return fill_batches(order, batching.conflicts, batching.batch_size)


@hookimpl
def register_samplers(register: Register) -> None:
    """Register ``conflict_free``."""
    register("conflict_free", ConflictFree, summary="shuffled batches in which no two pairs share a tile (default)")
