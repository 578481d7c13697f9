"""Batch samplers: the shared fill rule, the three built-ins and the per-epoch plan, against hand-worked truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SMALL_WORLD_ARGS, cli

import cvbench
from cvbench import Batching
from cvbench.data.sampling import EpochBatches, fill_batches, tiles_per_query
from cvbench.errors import PluginError, SpecError
from cvbench_plugins.samplers.gps_neighbours import neighbours


def batching(conflicts, batch_size=4, epoch=1, seed=0, meta=None, embed=None, tiles=None) -> Batching:
    tiles = np.array([c[0] for c in conflicts]) if tiles is None else tiles
    return Batching(conflicts, tiles, pd.DataFrame() if meta is None else meta, batch_size, epoch,
                    torch.Generator().manual_seed(seed), embed or (lambda: (_ for _ in ()).throw(AssertionError)))


def previous_conflict_free(tiles, batch_size, generator, drop_last=True):
    """The conflict-free sampler as it was before samplers became plugins: the default's batches must not move."""
    batches, order = [], torch.randperm(len(tiles), generator=generator).tolist()
    waiting, batch, used, pending = [], [], set(), order
    while pending:
        for item in pending:
            if used.isdisjoint(tiles[item]):
                batch.append(item)
                used.update(tiles[item])
                if len(batch) == batch_size:
                    batches.append(batch)
                    batch, used = [], set()
            else:
                waiting.append(item)
        if len(waiting) == len(pending):
            if len(batch) > 1 or not drop_last:
                batches.append(batch)
            batch, used = [], set()
        pending, waiting = waiting, []
    return batches


def test_tiles_per_query_drops_padding():
    positives = np.array([3, 4])
    semi = np.array([[5, -1], [-1, -1]])
    assert tiles_per_query(positives, semi) == [(3, 5), (4,)]
    assert tiles_per_query(positives, None) == [(3,), (4,)]


def test_fill_by_hand_with_companions_and_a_clash():
    conflicts = [(0,), (1,), (0,), (2,), (3,), (4,)]  # items 0 and 2 share tile 0
    companions = {0: [2, 3], 1: [], 2: [], 3: [], 4: [5], 5: []}
    # batch 3: 0 opens a batch and pulls 3 (2 clashes with 0); 1 fills it. 2 opens the next, 4 joins and pulls 5.
    assert fill_batches([0, 1, 2, 4], conflicts, 3, companions.__getitem__, drop_last=False) == [[0, 3, 1], [2, 4, 5]]
    # batch 4: [0, 3, 1] and 4 fill one (4's companion 5 does not follow into the next); 2 waits (it clashes
    # with 0) and then joins 5 in a last batch of two, dropped with drop_last.
    assert fill_batches([0, 1, 2, 4, 5], conflicts, 4, companions.__getitem__) == [[0, 3, 1, 4]]
    assert fill_batches([0, 1, 2, 4, 5], conflicts, 4, companions.__getitem__, drop_last=False) == [
        [0, 3, 1, 4], [5, 2]]


def test_conflict_free_keeps_the_batches_of_the_sampler_it_replaced():
    positives = np.repeat(np.arange(50), 2)  # VIGOR-like: each tile is positive of two queries, semi of neighbours
    semi = np.stack([(positives + 1) % 50, (positives + 7) % 50], axis=1)
    tiles = tiles_per_query(positives, semi)
    sampler = cvbench.create("sampler", "conflict_free")
    planned = sampler.plan(batching(tiles, batch_size=8, seed=5))
    assert planned == previous_conflict_free(tiles, 8, torch.Generator().manual_seed(5))
    for batch in planned:
        used = [t for item in batch for t in tiles[item]]
        assert len(used) == len(set(used)), batch


def test_neighbours_by_hand():
    points = np.array([[0.0, 0.0], [10.0, 0.0], [25.0, 0.0], [100.0, 0.0]])
    assert neighbours(points, count=2, radius=20.0) == [[1], [0, 2], [1], []]
    assert neighbours(points, count=1, radius=1000.0) == [[1], [0], [1], [2]]


def test_gps_neighbours_fill_each_batch_with_nearby_pairs_and_refuse_what_cannot_work(registry):
    xs = np.concatenate([np.arange(8) * 5.0, 1000 + np.arange(8) * 5.0])  # two clusters of 8 pairs, 1 km apart
    meta = pd.DataFrame({"x": xs, "y": np.zeros(16)})
    conflicts = [(i,) for i in range(16)]
    sampler = cvbench.create("sampler", "gps_neighbours", count=3, radius=100.0)

    def together(planned):  # pairs of items sharing a batch that come from one cluster, over all such pairs
        same = [int(xs[a] >= 1000) == int(xs[b] >= 1000) for batch in planned for a in batch for b in batch if a < b]
        return np.mean(same)

    near = [together(sampler.plan(batching(conflicts, batch_size=4, meta=meta, seed=s))) for s in range(20)]
    spread = [together(cvbench.create("sampler", "conflict_free").plan(batching(conflicts, batch_size=4, seed=s)))
              for s in range(20)]
    assert np.mean(near) > 0.8 and np.mean(spread) < 0.6  # a random batch of 4 from two clusters: 3/7 alike
    planned = sampler.plan(batching(conflicts, batch_size=4, meta=meta))
    assert planned == sampler.plan(batching(conflicts, batch_size=4, meta=meta))  # same seed, same batches
    with pytest.raises(SpecError, match="count 4 neighbours and the pair itself do not fit a batch of 4"):
        cvbench.create("sampler", "gps_neighbours", count=4).plan(batching(conflicts, batch_size=4, meta=meta))
    with pytest.raises(SpecError, match="needs the training items' coordinates"):
        sampler.plan(batching(conflicts, batch_size=4))


def test_hard_negatives_mine_the_nearest_tiles_of_each_pair(registry):
    # tile t is the unit vector at angle 10 t degrees; query i sits on its own tile i: its hardest other tiles
    # are its angular neighbours i - 1 and i + 1, then i - 2 and i + 2
    angles = np.radians(10.0 * np.arange(12))
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    conflicts = [(i,) for i in range(12)]
    embed = (lambda: (gallery.copy(), gallery.copy()))
    sampler = cvbench.create("sampler", "hard_negatives", count=2, pool=4, random_share=0.0)
    mined = sampler.mine(batching(conflicts, batch_size=4, epoch=2, embed=embed))
    assert all(set(mined[i]) == {(i - 1) % 12, (i + 1) % 12} - {-1} for i in range(1, 11))
    assert set(mined[0]) == {1, 2} and set(mined[11]) == {10, 9}  # the ends have one near side
    half = cvbench.create("sampler", "hard_negatives", count=2, pool=4, random_share=0.5)
    drawn = half.mine(batching(conflicts, batch_size=4, epoch=2, embed=embed))
    for i in range(12):  # one of the nearest, one drawn from the rest of the pool of four
        scores = {t: round(float(gallery[i] @ gallery[t]), 5) for t in range(12) if t != i}
        best = max(scores.values())
        pool = sorted(scores, key=lambda t: -scores[t])[:4]
        assert scores[drawn[i][0]] == best and drawn[i][1] in set(pool) - {drawn[i][0]}
    first = sampler.plan(batching(conflicts, batch_size=4, epoch=1, embed=embed))  # epoch 1 mines nothing
    assert sorted(i for b in first for i in b) == list(range(12))
    with pytest.raises(SpecError, match="pool 12 hard tiles per pair, but the training pairs hold 12 tiles"):
        cvbench.create("sampler", "hard_negatives", count=2, pool=12).plan(batching(conflicts, batch_size=4))


class Listed:
    """A sampler that returns whatever it is given: the engine's checks see it."""

    mines = False

    def __init__(self, batches):
        self.batches = batches

    def plan(self, batching):
        return self.batches


def test_the_engine_keeps_an_epochs_plan_for_resume_and_refuses_bad_plans():
    generator = torch.Generator().manual_seed(0)
    conflicts = [(i,) for i in range(12)]
    make = (lambda epoch: Batching(conflicts, np.arange(12), pd.DataFrame(), 4, epoch, generator, None))
    plan = EpochBatches(cvbench.create("sampler", "conflict_free"), "conflict_free", make, generator, 12, 4)
    plan.prepare(1)
    saved = plan.state_dict()
    after = generator.get_state()
    generator.manual_seed(99)  # a resumed process: the generator is wherever, the model has moved on
    resumed = EpochBatches(Listed([[0]]), "listed", make, generator, 12, 4)
    resumed.load_state_dict(saved)
    resumed.prepare(1)
    assert list(resumed) == list(plan) and torch.equal(generator.get_state(), after)
    for bad, message in (([[0, 1, 2, 3, 4]], "batch 0 has 5 items"), ([[0, 1], [1, 2]], "holds item 1"),
                         ([[0, 12]], "holds item 12"), ([], "planned no batch"), (None, "expected a list")):
        with pytest.raises(PluginError, match=message):
            EpochBatches(Listed(bad), "listed", make, generator, 12, 4).prepare(1)


def test_a_sampler_option_the_training_pairs_cannot_honour_fails_before_any_compute(tmp_path):
    result = cli("run", "--preset", "smoke", *SMALL_WORLD_ARGS, "--pretrainer", "mocov2", "--sampler",
                 "hard_negatives", "--sampler-option", "first_epoch=gps_neighbours", "--sampler-option", "pool=500",
                 "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert result.returncode != 0
    assert "hard_negatives: pool 500 hard tiles per pair, but the training pairs hold 128 tiles" in result.stderr
    assert not (tmp_path / "runs").exists()  # refused before pre-training, before a run folder


def test_ranks_that_plan_different_batches_are_stopped(registry, monkeypatch):
    from cvbench.nn import distributed

    plan = EpochBatches(cvbench.create("sampler", "conflict_free"), "conflict_free",
                        lambda epoch: batching([(t,) for t in range(8)], batch_size=4, epoch=epoch),
                        torch.Generator().manual_seed(0), 8, 4)
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "broadcast_object", lambda batches: batches)  # rank 0 agrees
    plan.prepare(1)
    monkeypatch.setattr(distributed, "broadcast_object", lambda batches: [list(reversed(b)) for b in batches])
    with pytest.raises(PluginError, match="planned different batches for epoch 2 on rank 1 than on rank 0"):
        plan.prepare(2)
