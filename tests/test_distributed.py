"""Several processes: gloo on the CPU with two ranks, as ``torchrun`` would start them.

The truths: the gradient of a two-rank step equals one process's gradient on
the whole batch (computed here, in the parent); a ``torchrun`` run's record is
complete and its recorded metrics are what one process measures on the saved
model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import SMALL_WORLD_ARGS
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from cvbench.nn import distributed
from cvbench.contract.registry import create
from cvbench.nn.model import Branch, TwoBranchNet
from cvbench.runs.reevaluate import evaluate_run
from cvbench.training.finetune import FinetuneForward, Objective
from cvbench.training.loop import trainable

BATCH, FEATURES, DIM = 8, 12, 6


def _net(seed: int) -> TwoBranchNet:
    torch.manual_seed(seed)
    return TwoBranchNet(Branch(nn.Identity(), nn.Linear(FEATURES, DIM)), Branch(nn.Identity(), nn.Linear(FEATURES, DIM)))


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return torch.randn(BATCH, FEATURES, generator=generator), torch.randn(BATCH, FEATURES, generator=generator)


def _gradients(forward: nn.Module, ground: torch.Tensor, aerial: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    loss, _ = forward(ground, aerial)
    loss.backward()
    module = getattr(forward, "module", forward)
    return float(loss.detach()), [p.grad.clone() for p in trainable(module)]


def _rank_main(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = _net(seed=rank)  # different weights on purpose: DDP must start every rank from rank 0's
        forward = distributed.wrap(FinetuneForward(model, Objective([("soft_triplet", 1.0, create("loss", "soft_triplet"))])),
                                   torch.device("cpu"))
        ground, aerial = _inputs()
        share = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        loss, grads = _gradients(forward, ground[share], aerial[share])
        torch.save({"loss": loss, "grads": grads}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_rank_gradient_equals_one_process_gradient_on_the_whole_batch(tmp_path):
    out = str(tmp_path / "grads")
    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    reference = FinetuneForward(_net(seed=0), Objective([("soft_triplet", 1.0, create("loss", "soft_triplet"))]))
    loss, expected = _gradients(reference, *_inputs())
    for rank in range(2):
        got = torch.load(f"{out}.{rank}")
        assert got["loss"] == pytest.approx(loss, rel=1e-6)  # every rank sees the whole batch's loss
        for mine, theirs in zip(got["grads"], expected):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)


def test_shards_cover_each_batch_in_order_with_equal_shares(monkeypatch):
    batches = [[5, 1, 4, 2, 8], [3, 9, 7, 0], [6]]
    shares = {}
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    for me in range(2):
        monkeypatch.setattr(distributed, "rank", lambda me=me: me)
        shares[me] = distributed.shard_batches(batches)
    # the 5-item batch loses its last item, the 1-item batch is dropped
    assert shares[0] == [[5, 1], [3, 9]] and shares[1] == [[4, 2], [7, 0]]
    assert [a + b for a, b in zip(shares[0], shares[1])] == [[5, 1, 4, 2], [3, 9, 7, 0]]
    slices = [distributed.shard(7, r) for r in range(2)]
    assert [list(range(7)[s]) for s in slices] == [[0, 1, 2, 3], [4, 5, 6]]


def test_one_process_is_the_identity():
    rows = torch.arange(6.0).view(3, 2)
    assert not distributed.active() and distributed.is_main() and distributed.world_size() == 1
    assert distributed.gather_with_grad(rows) is rows and distributed.gather_rows(rows, 3) is rows
    assert distributed.shard_batches([[1, 2, 3]]) == [[1, 2, 3]]
    module = nn.Linear(2, 2)
    assert distributed.wrap(module, torch.device("cpu")) is module


def test_torchrun_two_processes_write_one_complete_record_that_one_process_reproduces(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "cvbench",
         "run", "--preset", "smoke", "--pretrainer", "mocov2", "--pretrain-batch-size", "32", "--epochs", "2",
         "--sampler", "hard_negatives", "--sampler-option", "count=4", "--sampler-option", "pool=8",
         "--runs-dir", str(runs), "--quiet", *SMALL_WORLD_ARGS],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(runs.iterdir())  # rank 1 wrote no folder of its own
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "finished" and record["processes"] == 2
    assert record["num_queries"] == 128 and record["pretraining"]["aerial"]["images"] > 0
    assert record["timings"]["mining_s"] > 0  # epoch 2 mined on both ranks, which agreed on its batches
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {
        "pretrained_aerial.safetensors", "initial.safetensors", "model.safetensors"}
    # the gathered evaluation is the exact one-process evaluation of the saved model
    again = evaluate_run(run_dir, quiet=True, device_name="cpu")
    assert again["metrics"] == record["metrics"]
    for key, value in record["uniformity"]["after"].items():
        assert again["uniformity"][key] == pytest.approx(value, abs=1e-5)
