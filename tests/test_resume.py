"""Resuming interrupted runs: a run killed at a random batch and resumed ends with an uninterrupted run's numbers.

The interruption comes from a third-party loss plugin installed like any
package: at its N-th call it sends its own process SIGKILL (which nothing can
catch: the run resumes from its last epoch checkpoint) or SIGTERM (the run
saves mid-epoch and exits). It adds ``0 * value`` to the objective, so the
numbers are those of the soft-margin triplet loss alone, bit for bit.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import SMALL_WORLD, SMALL_WORLD_ARGS, cli, make_distribution, run_cli

from cvbench.runs import runner
from cvbench.errors import CvbenchError
from cvbench.runs.assemble import build_model, resolve_spec
from cvbench.runs.folder import RunFolder
from cvbench.spec import RunSpec
from cvbench.training.resume import STATE, RunInterrupted, load_state

KILLER = '''
import os, signal
from pathlib import Path
from torch import nn
from cvbench.contract.hookspecs import hookimpl


class Killer(nn.Module):
    """Sends this process ``signal`` at call ``at``, once (a marker file remembers it)."""

    def __init__(self, at=0, signal="KILL", marker=""):
        super().__init__()
        self.at, self.signal, self.marker, self.calls = int(at), signal, marker, 0

    def forward(self, z_ground, z_aerial):
        self.calls += 1
        if self.at and self.calls == self.at and self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text(str(self.calls))
            os.kill(os.getpid(), getattr(signal, "SIG" + self.signal))
        return z_ground.sum() * 0.0  # weight 1, value 0: the objective is unchanged


@hookimpl
def register_losses(register):
    register("killer", Killer, summary="test: signals its own process at a chosen call")
'''

EPOCHS, BATCHES_PER_EPOCH = 2, 4  # smoke: 128 pairs in batches of 32
RUN = ("run", "--preset", "smoke", "--epochs", str(EPOCHS), "--eval-every", str(EPOCHS), "--pretrainer", "mocov2",
       "--pretrain-epochs", "2", "--loss", "soft_triplet", "--loss", "killer", "--quiet", *SMALL_WORLD_ARGS)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_distribution(tmp_path_factory.mktemp("site"), "killer-cvbench", "killer_cvbench", KILLER,
                             {"killer": "killer_cvbench"})


@pytest.fixture(scope="module")
def uninterrupted(site, tmp_path_factory):
    runs = tmp_path_factory.mktemp("reference")
    result = run_cli(*RUN, "--runs-dir", str(runs), site=site)
    assert result.returncode == 0, result.stderr
    (run_dir,) = runs.iterdir()
    return run_dir


def _numbers(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    record = json.loads((run_dir / "result.json").read_text())
    rows = pd.read_csv(run_dir / "metrics.csv")
    rows = rows.drop(columns=[c for c in ("train_seconds", "mining_seconds") if c in rows])  # times, not numbers
    return record, rows


def _interrupt_and_resume(site: Path, runs: Path, sig: str, at: int) -> Path:
    marker = runs.parent / f"{runs.name}.marker"
    killed = run_cli(*RUN, "--runs-dir", str(runs), "--loss-option", f"killer.at={at}",
                     "--loss-option", f"killer.signal={sig}", "--loss-option", f"killer.marker={marker}", site=site)
    assert marker.exists()
    (run_dir,) = runs.iterdir()
    record = json.loads((run_dir / "result.json").read_text())
    if sig == "KILL":
        assert killed.returncode == -signal.SIGKILL and record["status"] == "running"  # it never got to say
        listed = RunFolder(run_dir).record()  # but its process is gone, so a listing knows
        assert (listed["status"], listed["resume"]) == ("dead", f"cvbench run --resume {run_dir}")
    else:
        assert killed.returncode == 130 and record["status"] == "interrupted", killed.stderr
        assert f"--resume {run_dir}" in killed.stderr and record["resume"] == f"cvbench run --resume {run_dir}"
        state = load_state(run_dir / "checkpoints" / STATE)
        assert (state["stage"], state["epoch"], state["batch"]) == (
            "finetune", (at - 1) // BATCHES_PER_EPOCH, (at - 1) % BATCHES_PER_EPOCH + 1)
    resumed = run_cli("run", "--resume", str(run_dir), "--quiet", site=site)
    assert resumed.returncode == 0, resumed.stderr
    return run_dir


def _assert_same_numbers(run_dir: Path, reference: Path) -> None:
    record, rows = _numbers(run_dir)
    expected, expected_rows = _numbers(reference)
    assert record["status"] == "finished"
    assert record["metrics"] == expected["metrics"]
    assert record["uniformity"] == expected["uniformity"]
    losses = (lambda r: {branch: stage["loss"] for branch, stage in r["pretraining"].items()})
    assert losses(record) == losses(expected)
    pd.testing.assert_frame_equal(rows, expected_rows, check_exact=True)
    assert not (run_dir / "checkpoints" / STATE).exists()  # removed once finished


def test_a_run_records_its_owner_and_heartbeat(uninterrupted):
    """The process that wrote the record (host, pid), and when it last did: what tells a dead run from a live one."""
    record = json.loads((uninterrupted / "result.json").read_text())
    owner = record["owner"]
    assert owner["host"] == socket.gethostname()
    assert isinstance(owner["pid"], int) and owner["pid"] not in (0, os.getpid())  # the run's own process
    started = dt.datetime.fromisoformat(record["started"])
    heartbeat = dt.datetime.fromisoformat(record["heartbeat"])
    assert started <= heartbeat <= dt.datetime.now(dt.timezone.utc)
    assert RunFolder(uninterrupted).record()["status"] == "finished"  # a finished run is never judged


def test_sigkill_at_a_random_batch_then_resume_gives_the_uninterrupted_numbers(site, uninterrupted, tmp_path):
    at = random.Random(os.getpid()).randint(1, EPOCHS * BATCHES_PER_EPOCH)  # a random fine-tuning step
    run_dir = _interrupt_and_resume(site, tmp_path / "runs", "KILL", at)
    _assert_same_numbers(run_dir, uninterrupted)


def test_sigterm_mid_epoch_saves_and_resume_continues_from_that_batch(site, uninterrupted, tmp_path):
    run_dir = _interrupt_and_resume(site, tmp_path / "runs", "TERM", BATCHES_PER_EPOCH + 2)  # epoch 2, batch 2
    _assert_same_numbers(run_dir, uninterrupted)


def test_sigterm_in_pre_training_resumes_with_the_queue_and_momentum_encoder(monkeypatch, tmp_path):
    """In process: the SIGTERM arrives at the 3rd pre-training step (epoch 1 of 2, batch 3 of 4)."""
    from cvbench.training import pretrain

    spec = RunSpec(preset="smoke", pretrainer="mocov2", pretrain_epochs=2, epochs=1, device="cpu",
                   data_options=SMALL_WORLD)
    reference = runner.run(spec, tmp_path / "reference", quiet=True)
    original, calls = pretrain.pretrain_step, []

    def step_then_signal(*args, **kwargs):
        calls.append(1)
        loss = original(*args, **kwargs)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    monkeypatch.setattr(pretrain, "pretrain_step", step_then_signal)
    with pytest.raises(RunInterrupted, match="epoch 1, batch 3.*--resume"):
        runner.run(spec, tmp_path / "runs", quiet=True)
    monkeypatch.setattr(pretrain, "pretrain_step", original)
    (run_dir,) = (tmp_path / "runs").iterdir()
    state = load_state(run_dir / "checkpoints" / STATE)
    assert (state["stage"], state["epoch"], state["batch"]) == ("pretrain:aerial", 0, 3)
    assert any(key.endswith("queue.keys") for key in state["pretrainer"])
    assert any(key.startswith("key_backbone.") for key in state["pretrainer"])
    runner.resume_run(run_dir, quiet=True)
    _assert_same_numbers(run_dir, reference)


def test_sigterm_mid_epoch_of_hard_negative_mining_resumes_with_the_mined_batches(monkeypatch, tmp_path):
    """In process: the batches of epoch 2 were mined with the model as epoch 2 began; the resumed run, whose
    model has trained since, must serve those batches, not mine new ones."""
    from cvbench.training import finetune

    spec = RunSpec(preset="smoke", epochs=2, eval_every=2, batch_size=16, sampler="hard_negatives",
                   sampler_options={"count": 4, "pool": 8}, device="cpu", data_options=SMALL_WORLD)
    reference = runner.run(spec, tmp_path / "reference", quiet=True)
    batches = 128 // 16
    original, calls = finetune.finetune_step, []

    def step_then_signal(*args, **kwargs):
        calls.append(1)
        original(*args, **kwargs)
        if len(calls) == batches + 3:  # epoch 2, after its third batch
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(finetune, "finetune_step", step_then_signal)
    with pytest.raises(RunInterrupted, match="epoch 2, batch 3"):
        runner.run(spec, tmp_path / "runs", quiet=True)
    monkeypatch.setattr(finetune, "finetune_step", original)
    (run_dir,) = (tmp_path / "runs").iterdir()
    state = load_state(run_dir / "checkpoints" / STATE)
    assert state["batches"]["epoch"] == 2 and len(state["batches"]["batches"]) >= 3
    runner.resume_run(run_dir, quiet=True)
    _assert_same_numbers(run_dir, reference)
    record = json.loads((run_dir / "result.json").read_text())
    assert record["timings"]["mining_s"] > 0 and "mining_seconds" in pd.read_csv(run_dir / "metrics.csv")


def test_resume_refuses_finished_runs_new_options_and_folders_without_state(uninterrupted, tmp_path):
    with pytest.raises(CvbenchError, match="already finished"):
        runner.resume_run(uninterrupted, quiet=True)
    result = cli("run", "--resume", str(uninterrupted), "--epochs", "5")
    assert result.returncode == 2 and "drop --epochs" in " ".join(result.stderr.split())
    empty = tmp_path / "run"
    (empty / "checkpoints").mkdir(parents=True)
    (empty / "spec.json").write_text(json.dumps(RunSpec(preset="smoke").to_dict()))
    (empty / "result.json").write_text(json.dumps({"status": "running", "stage": "run"}))
    with pytest.raises(CvbenchError, match="nothing to resume"):
        runner.resume_run(empty, quiet=True)
    (empty / "checkpoints" / STATE).write_bytes(b"not a checkpoint")
    with pytest.raises(CvbenchError, match="cannot read the training state"):
        runner.resume_run(empty, quiet=True)
    torch.save({"version": 99, "stage": "finetune"}, empty / "checkpoints" / STATE)
    with pytest.raises(CvbenchError, match="not a cvbench training state of version 1"):
        runner.resume_run(empty, quiet=True)


def test_a_state_that_does_not_fit_the_run_names_the_offending_keys(tmp_path):
    spec = RunSpec(preset="smoke", epochs=1, device="cpu")
    run_dir = runner.run(spec, tmp_path, quiet=True)
    record = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**record, "status": "interrupted"}))
    model = build_model(resolve_spec(RunSpec(preset="smoke", dim=512)))
    torch.save({"version": 1, "stage": "finetune", "epoch": 0, "batch": 0, "spec": {"dim": 512},
                "model": model.state_dict(), "fields": {}, "rows": []}, run_dir / "checkpoints" / STATE)
    with pytest.raises(CvbenchError, match=r"(?s)does not fit the two-branch model.*made with.*512.*shape: "):
        runner.resume_run(run_dir, quiet=True)
