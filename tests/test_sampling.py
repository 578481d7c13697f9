"""Batches never hold two queries that share a positive or semi-positive tile."""

from __future__ import annotations

import numpy as np
import torch

from cvbench.data.sampling import ConflictFreeBatchSampler, tiles_per_query


def test_tiles_per_query_drops_padding():
    positives = np.array([3, 4])
    semi = np.array([[5, -1], [-1, -1]])
    assert tiles_per_query(positives, semi) == [(3, 5), (4,)]
    assert tiles_per_query(positives, None) == [(3,), (4,)]


def test_no_batch_shares_a_tile_and_every_item_is_used_once():
    # VIGOR-like: each tile is positive of two queries, semi-positive of neighbours.
    positives = np.repeat(np.arange(50), 2)
    semi = np.stack([(positives + 1) % 50, (positives + 7) % 50], axis=1)
    tiles = tiles_per_query(positives, semi)
    sampler = ConflictFreeBatchSampler(tiles, 8, torch.Generator().manual_seed(0), drop_last=False)
    seen = []
    for batch in sampler:
        used = [t for item in batch for t in tiles[item]]
        assert len(used) == len(set(used)), batch
        seen += batch
    assert sorted(seen) == list(range(len(tiles)))


def test_same_seed_same_batches_and_a_new_epoch_reshuffles():
    tiles = [(i,) for i in range(40)]
    first = list(ConflictFreeBatchSampler(tiles, 8, torch.Generator().manual_seed(3)))
    again = list(ConflictFreeBatchSampler(tiles, 8, torch.Generator().manual_seed(3)))
    assert first == again
    sampler = ConflictFreeBatchSampler(tiles, 8, torch.Generator().manual_seed(3))
    assert list(sampler) != list(sampler)
    assert len(sampler) == 5 and all(len(b) == 8 for b in first)
