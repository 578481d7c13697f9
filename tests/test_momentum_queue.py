"""Building blocks of the momentum methods: EMA update (eq 3.2), BYOL's rate schedule, key queue, DDP helpers."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

from cvbench.nn import (
    KeyQueue,
    batch_shuffle,
    batch_unshuffle,
    concat_all_gather,
    cosine_momentum,
    ema_update,
    momentum_copy,
)
from cvbench.nn.distributed import active


def _linear(weight: list[float], bias: float) -> nn.Linear:
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight]))
        layer.bias.fill_(bias)
    return layer


def test_ema_update_follows_eq_3_2_by_hand() -> None:
    target, online = _linear([1.0, 2.0], 0.5), _linear([3.0, -1.0], 1.5)
    ema_update(target, online, momentum=0.9)
    # 0.9 * [1, 2] + 0.1 * [3, -1] = [1.2, 1.7]; 0.9 * 0.5 + 0.1 * 1.5 = 0.6
    assert torch.allclose(target.weight, torch.tensor([[1.2, 1.7]]))
    assert torch.allclose(target.bias, torch.tensor([0.6]))
    assert torch.equal(online.weight, torch.tensor([[3.0, -1.0]]))


def test_ema_update_end_points() -> None:
    target, online = _linear([1.0, 2.0], 0.5), _linear([3.0, -1.0], 1.5)
    ema_update(target, online, momentum=1.0)
    assert torch.equal(target.weight, torch.tensor([[1.0, 2.0]]))
    ema_update(target, online, momentum=0.0)
    assert torch.equal(target.weight, online.weight) and torch.equal(target.bias, online.bias)


def test_ema_update_refuses_modules_of_different_shape() -> None:
    with pytest.raises(ValueError):
        ema_update(nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 1), nn.Linear(1, 1)), momentum=0.5)


def test_momentum_copy_is_an_equal_frozen_independent_copy() -> None:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    online(torch.randn(5, 3)).sum().backward()
    twin = momentum_copy(online)
    for param_t, param_o in zip(twin.parameters(), online.parameters()):
        assert torch.equal(param_t, param_o)
        assert not param_t.requires_grad and param_t.grad is None
        assert param_t.data_ptr() != param_o.data_ptr()
    assert torch.equal(twin[1].running_mean, online[1].running_mean)
    with torch.no_grad():
        online[0].weight.add_(1.0)
    assert not torch.equal(twin[0].weight, online[0].weight)


def test_byol_cosine_schedule_by_hand() -> None:
    base, total = 0.996, 100
    assert cosine_momentum(0, total, base) == pytest.approx(0.996)
    assert cosine_momentum(50, total, base) == pytest.approx(0.998)  # cos(pi/2) = 0: halfway to 1
    assert cosine_momentum(100, total, base) == pytest.approx(1.0)
    assert cosine_momentum(25, total, base) == pytest.approx(1 - 0.004 * (math.sqrt(0.5) + 1) / 2)
    assert cosine_momentum(150, total, base) == pytest.approx(1.0)
    assert cosine_momentum(10, 0, base) == 0.996  # no schedule


def test_queue_starts_full_of_unit_vectors() -> None:
    torch.manual_seed(0)
    queue = KeyQueue(7, 3)
    assert queue.keys.shape == (7, 3) and queue.dim == 3 and int(queue.ptr) == 0
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(7))
    assert set(queue.state_dict()) == {"keys", "ptr"}


def test_queue_is_fifo_and_wraps_around() -> None:
    queue = KeyQueue(5, 2)
    first = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    second = torch.tensor([[4.0, 0.0], [5.0, 0.0], [6.0, 0.0]])
    queue.enqueue(first)
    assert torch.equal(queue.keys[:3], first) and int(queue.ptr) == 3
    queue.enqueue(second)
    # rows 3, 4 take keys 4, 5; key 6 wraps to row 0 and overwrites the oldest key, 1
    expected = torch.tensor([[6.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0]])
    assert torch.equal(queue.keys, expected) and int(queue.ptr) == 1
    assert queue.keys.shape == (5, 2)


def test_queue_keeps_the_newest_keys_of_an_oversized_batch() -> None:
    queue = KeyQueue(5, 1)
    queue.enqueue(torch.zeros(1, 1))  # ptr 1
    queue.enqueue(torch.arange(10.0, 17.0)[:, None])  # 7 keys, row by row: rows 1 2 3 4 0 1 2
    assert queue.keys[:, 0].tolist() == [14.0, 15.0, 16.0, 12.0, 13.0]
    assert int(queue.ptr) == 3


def test_deferred_queue_takes_its_width_from_a_batch_or_a_checkpoint() -> None:
    torch.manual_seed(0)
    saved = KeyQueue(4, 3)
    saved.enqueue(torch.ones(2, 3))
    resumed = KeyQueue(4)
    assert resumed.dim is None
    resumed.load_state_dict(saved.state_dict())
    assert torch.equal(resumed.keys, saved.keys) and int(resumed.ptr) == 2
    fresh = KeyQueue(4)
    fresh.enqueue(torch.ones(1, 6))
    assert fresh.keys.shape == (4, 6)
    with pytest.raises(ValueError):
        fresh.materialise(5)


def test_distributed_helpers_are_no_ops_without_a_process_group() -> None:
    assert not active()
    batch = torch.randn(4, 2)
    assert concat_all_gather(batch) is batch
    shuffled, index = batch_shuffle(batch)
    assert shuffled is batch and torch.equal(index, torch.arange(4))
    assert batch_unshuffle(batch, index) is batch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gloo_world_of_one():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_distributed_helpers_in_a_world_of_one(gloo_world_of_one: None) -> None:
    assert dist.is_initialized() and not active()  # one rank: nothing to gather or shuffle across
    batch = torch.arange(16.0).view(8, 2)
    assert torch.equal(concat_all_gather(batch), batch)
    shuffled, index = batch_shuffle(batch)
    assert torch.equal(shuffled, batch) and torch.equal(index, torch.arange(8))
    assert torch.equal(batch_unshuffle(shuffled, index), batch)


def _two_rank_worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # different RNG per rank: the broadcast must make the permutation agree
        batch = torch.arange(4.0)[:, None] + 10 * rank  # rank 0: 0..3, rank 1: 10..13
        shuffled, index = batch_shuffle(batch)
        result = {
            "gathered": concat_all_gather(batch)[:, 0].tolist(),
            "shuffled": shuffled[:, 0].tolist(),
            "restored": batch_unshuffle(shuffled * 2, index)[:, 0].tolist(),
        }
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_shuffled_batch_norm_index_trick_across_two_processes(tmp_path) -> None:
    torch.multiprocessing.spawn(_two_rank_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    everything = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]
    for rank, result in enumerate(results):
        assert result["gathered"] == everything
        own = [v + 10 * rank for v in range(4)]
        assert result["restored"] == [2 * v for v in own]  # per-row outputs come home in order
    assert sorted(results[0]["shuffled"] + results[1]["shuffled"]) == everything  # one permutation, split
    assert any(v >= 10 for v in results[0]["shuffled"])  # rank 0's key encoder sees rank 1's images
