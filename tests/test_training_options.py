"""What may train and how: the lr schedules, the optimisers, --dim auto, shared and frozen backbones, zero-shot runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cvbench.errors import SpecError
from cvbench.runs.assemble import build_model, load_run_model, resolve_spec
from cvbench.runs.folder import INITIAL_CHECKPOINT
from cvbench.spec import RunSpec
from cvbench.training.finetune import LearningRate, make_optimizer

from conftest import SMALL_WORLD_ARGS, cli, cli_spec


def schedule(**values) -> LearningRate:
    return LearningRate(RunSpec(**{"lr": 1.0, "epochs": 4, "milestones": (), "warmup_epochs": 0.0, **values}))


def test_the_cosine_schedule_warms_up_linearly_then_follows_half_a_cosine_by_step():
    lr = schedule(schedule="cosine", warmup_epochs=1.0)
    # 4 batches an epoch: the warm-up reaches the peak at the last step of epoch 1
    assert [lr.factor(1, batch, 4) for batch in (1, 2, 3, 4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr.factor(2, 1, 4) == 1.0  # the decay starts from the peak
    assert lr.factor(3, 1, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 3)))  # 1 of 3 decay epochs done
    assert lr.factor(4, 3, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2.5 / 3)))
    short = schedule(schedule="cosine", warmup_epochs=0.5)  # a warm-up that ends between two steps
    assert max(short.factor(1, batch, 3) for batch in (1, 2, 3)) == 1.0


def test_milestones_divide_by_ten_from_each_milestone_on_and_constant_stays():
    steps = schedule(schedule="milestones", milestones=(2, 3))
    assert [steps.factor(epoch, 1, 5) for epoch in (1, 2, 3, 4)] == pytest.approx([1.0, 0.1, 0.01, 0.01])
    assert schedule(schedule="constant").factor(3, 2, 5) == 1.0


def test_adamw_decouples_the_weight_decay_adam_adds_to_the_gradient():
    weights = {}
    for kind in ("adam", "adamw"):
        parameter = torch.nn.Parameter(torch.ones(1))
        optimizer = make_optimizer(RunSpec(optimizer=kind, lr=0.1, weight_decay=0.5), [parameter])
        assert type(optimizer).__name__ == {"adam": "Adam", "adamw": "AdamW"}[kind]
        parameter.grad = torch.zeros(1)
        optimizer.step()
        weights[kind] = parameter.item()
    assert weights["adamw"] == pytest.approx(1 - 0.1 * 0.5)  # w - lr * wd * w, decoupled from the moments
    assert weights["adam"] == pytest.approx(1 - 0.1)  # the decay entered the gradient: Adam's first step is lr


@pytest.mark.parametrize("head, options, expected", [
    ("safa", [], 8 * 128),  # smoke: resnet10t's stage 2 has 128 channels
    ("gem", [], 128),
    ("netvlad", ["clusters=4"], 4 * 128),
    ("mixvpr", ["rows=2"], 2 * 128),
    ("salad", ["clusters=4", "cluster_dim=8", "token_dim=16"], 16 + 4 * 8),
])
def test_dim_auto_is_each_heads_natural_size_for_the_backbone(registry, head, options, expected):
    spec = resolve_spec(cli_spec(preset="smoke", head=head, head_option=options, dim="auto"))
    assert spec.dim == expected
    embedding = build_model(spec).ground(torch.rand(2, 3, 32, 128))
    assert embedding.shape == (2, expected)


def test_a_shared_backbone_is_one_module_and_refuses_a_head_bound_to_one_map_size(registry):
    shared = build_model(resolve_spec(cli_spec(preset="smoke", head="gem", shared_backbone=True)))
    separate = build_model(resolve_spec(cli_spec(preset="smoke", head="gem")))
    assert shared.ground is shared.aerial
    assert sum(p.numel() for p in shared.parameters()) * 2 == sum(p.numel() for p in separate.parameters())
    with pytest.raises(SpecError, match=r"--shared-backbone: head 'safa' was built for the aerial feature map 8x8 but "
                                        r"the ground views give 4x16"):
        build_model(resolve_spec(cli_spec(preset="smoke", head="safa", shared_backbone=True)))
    with pytest.raises(SpecError, match="--shared-backbone makes one backbone of both branches"):
        resolve_spec(cli_spec(preset="smoke", shared_backbone=True, ground_init="imagenet", aerial_init="random"))
    with pytest.raises(SpecError, match="--freeze-backbone keeps the start weights"):
        resolve_spec(cli_spec(preset="smoke", freeze_backbone=True, pretrainer="mocov2"))


@pytest.fixture(scope="module")
def frozen_runs(tmp_path_factory) -> dict[str, Path]:
    """A zero-shot run (no fine-tuning, parameter-free GeM) and a frozen-backbone run from the same seed."""
    runs = tmp_path_factory.mktemp("frozen")
    common = ("run", "--preset", "smoke", *SMALL_WORLD_ARGS, "--head", "gem", "--freeze-backbone", "--quiet")
    folders = {}
    for name, extra in (("zero_shot", ("--epochs", "0", "--head-option", "learn_p=false", "--head-option",
                                       "project=false")),
                        ("adapter", ("--epochs", "1"))):
        result = cli(*common, *extra, "--runs-dir", str(runs / name))
        assert result.returncode == 0, result.stdout + result.stderr
        folders[name] = next((runs / name).iterdir())
        assert result.stdout == f"{folders[name]}\n"  # --quiet: the run folder alone on stdout, RUN=$(cvbench run -q)
    return folders


def test_a_zero_shot_run_is_recorded_and_shown_like_any_run(frozen_runs):
    record = json.loads((frozen_runs["zero_shot"] / "result.json").read_text())
    assert record["status"] == "finished" and record["spec"]["epochs"] == 0
    assert 0 <= record["metrics"]["R@1"] <= 100
    board = cli("leaderboard", str(frozen_runs["zero_shot"].parent), "--format", "csv")
    assert board.returncode == 0, board.stderr
    assert "none (zero-shot)" in board.stdout and "resnet10t (frozen)" in board.stdout
    again = cli("eval", str(frozen_runs["zero_shot"]))
    assert json.loads(again.stdout)["metrics"]["R@1"] == record["metrics"]["R@1"]


def test_freeze_backbone_trains_the_head_and_keeps_the_start_weights(frozen_runs):
    _, start = load_run_model(frozen_runs["adapter"], INITIAL_CHECKPOINT)
    _, adapted = load_run_model(frozen_runs["adapter"])
    for branch in ("ground", "aerial"):
        before, after = getattr(start, branch).backbone.state_dict(), getattr(adapted, branch).backbone.state_dict()
        assert all(torch.equal(before[key], after[key]) for key in before)  # weights and BN statistics
        assert getattr(start, branch).head.p.item() == 3.0 != getattr(adapted, branch).head.p.item()  # p learned
