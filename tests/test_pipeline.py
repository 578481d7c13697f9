"""The pipeline end to end on a toy dataset: records, determinism, Table 3.1 inits, stages."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from toy_dataset import ToyPlugin

from cvbench.contract.hookspecs import hookimpl
from cvbench.errors import SpecError, TrainingDivergedError
from cvbench.runs.assemble import build_model, resolve_spec
from cvbench.runs.reevaluate import evaluate_run
from cvbench.runs.runner import run
from cvbench.spec import RunSpec
from cvbench.training.checkpoint import load_weights

FAST = dict(preset="smoke", dataset="toy", backbone="resnet10t", ground_size=(16, 64), aerial_size=(32, 32),
            dim=256, batch_size=8, epochs=2, pretrain_batch_size=8, head="siamese_vgg")


@pytest.fixture
def toy(registry):
    registry.add(ToyPlugin(), source="toy-tests")
    yield registry


def test_run_writes_a_complete_record(toy, tmp_path):
    run_dir = run(RunSpec(**FAST), tmp_path, quiet=True)
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "finished"
    assert list(record["metrics"]) == ["R@1", "R@5", "R@10", "R@1%", "AP", "error_median_m", "error_mean_m",
                                       *(f"acc@{x}m" for x in (1, 5, 10, 25, 50, 100))]
    assert record["conventions"] == {"ties": "random", "one_percent": "floor+1", "hit_rate": "paper", "fov": 360.0,
                                     "orientation": "known"}
    assert record["evaluated_on"] == {"dataset": "toy", "split": "toy"}
    assert record["num_queries"] == 48 and record["num_references"] == 48
    assert set(record["uniformity"]) == {"before", "after"}
    assert set(record["uniformity"]["after"]) == {"ground", "satellite", "all"}
    assert record["spec"]["dataset"] == "toy" and record["split"] == "toy"
    assert {"total_s", "finetune_s", "eval_s"} <= set(record["timings"])
    assert "torch" in record["environment"]["packages"]
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1, 2]
    assert metrics["R@1"].iloc[-1] == pytest.approx(record["metrics"]["R@1"])
    assert json.loads((run_dir / "spec.json").read_text()) == record["spec"]
    again = evaluate_run(run_dir, quiet=True, predictions=5)  # the saved model gives the recorded numbers
    assert again["metrics"] == pytest.approx(record["metrics"])
    predictions = pd.read_csv(again["predictions"])
    assert len(predictions) == 48 and list(predictions.columns[:4]) == ["query", "query_index", "positive",
                                                                          "positive_index"]
    top1_hits = 100 * (predictions["top1_index"] == predictions["positive_index"]).mean()
    assert top1_hits == pytest.approx(record["metrics"]["R@1"], abs=100 / 48 + 1e-9)  # equal up to a tie


def test_same_seed_same_numbers(toy, tmp_path):
    first = json.loads((run(RunSpec(**FAST), tmp_path / "a", quiet=True) / "result.json").read_text())
    second = json.loads((run(RunSpec(**FAST), tmp_path / "b", quiet=True) / "result.json").read_text())
    assert first["metrics"] == second["metrics"]
    assert first["uniformity"] == second["uniformity"]


def test_semi_positives_give_a_hit_rate(toy, tmp_path):
    run_dir = run(RunSpec(**{**FAST, "split": "toy_semi", "epochs": 1}), tmp_path, quiet=True)
    record = json.loads((run_dir / "result.json").read_text())
    assert record["metrics"]["hit_rate"] >= record["metrics"]["R@1"]


def test_pretrain_then_train_from_its_checkpoint(toy, tmp_path):
    spec = RunSpec(**{**FAST, "pretrainer": "simsiam", "pretrain_branches": "aerial", "pretrain_data": "val"})
    pre_dir = run(spec, tmp_path, quiet=True, stage="pretrain", finetune_stage=False)
    checkpoint = pre_dir / "checkpoints" / "pretrained_aerial.safetensors"
    record = json.loads((pre_dir / "result.json").read_text())
    assert record["status"] == "finished" and record["pretraining"]["aerial"]["images"] == 48
    assert "metrics" not in record
    train_spec = resolve_spec(RunSpec(**{**FAST, "aerial_init": str(checkpoint)}))
    model = build_model(train_spec)
    reference = build_model(resolve_spec(RunSpec(**FAST)))
    load_weights(reference.aerial.backbone, checkpoint)
    for a, b in zip(model.aerial.backbone.state_dict().values(), reference.aerial.backbone.state_dict().values()):
        assert torch.equal(a, b)


def test_a_split_the_dataset_lacks_fails_before_a_run_folder_exists(toy, tmp_path):
    with pytest.raises(SpecError, match="toy_semi"):
        run(RunSpec(**{**FAST, "split": "cross_area"}), tmp_path / "runs", quiet=True)
    assert not (tmp_path / "runs").exists()


def test_a_head_that_does_not_fit_fails_before_a_run_folder_exists(toy, tmp_path):
    with pytest.raises(SpecError, match="dim"):
        run(RunSpec(**{**FAST, "head": "safa", "dim": 1000}), tmp_path / "runs", quiet=True)
    assert not (tmp_path / "runs").exists()


class LateNaNLoss(torch.nn.Module):
    """Finite for the first ``good`` calls, then NaN."""

    def __init__(self, good: int = 0) -> None:
        super().__init__()
        self.good, self.calls = good, 0

    def forward(self, z_ground, z_aerial):
        self.calls += 1
        value = (z_ground - z_aerial).pow(2).sum()
        return value * float("nan") if self.calls > self.good else value


class NaNPlugin:
    @hookimpl
    def register_losses(self, register):
        register("nan", LateNaNLoss)  # NaN from the first call unless given ``good``


def test_a_nan_loss_stops_the_run_naming_epoch_and_batch(toy, tmp_path):
    toy.add(NaNPlugin(), source="nan-tests")
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 1"):
        run(RunSpec(**{**FAST, "loss": [("nan", 1.0)]}), tmp_path, quiet=True)
    (record_path,) = tmp_path.glob("*/result.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "failed" and "epoch 1, batch 1" in record["error"]


def test_a_nan_in_a_later_epoch_keeps_the_last_good_epoch_state(toy, tmp_path):
    from cvbench.training.resume import STATE, load_state

    toy.add(NaNPlugin(), source="nan-tests")
    spec = RunSpec(**{**FAST, "epochs": 3, "loss": [("nan", 1.0)], "loss_options": {"nan": {"good": 6}}})
    with pytest.raises(TrainingDivergedError, match="epoch 2, batch 1"):  # 6 batches of 8 per epoch
        run(spec, tmp_path, quiet=True)
    (run_dir,) = tmp_path.iterdir()
    state = load_state(run_dir / "checkpoints" / STATE)
    assert (state["stage"], state["epoch"], state["batch"]) == ("finetune", 1, 0)
    assert all(torch.isfinite(value).all() for value in state["model"].values() if value.is_floating_point())
    assert list(pd.read_csv(run_dir / "metrics.csv")["epoch"]) == [0, 1]


@pytest.mark.parametrize("options", [
    {"pretrainer": "mocov2", "pretrain_options": {"queue_size": 64, "bn_splits": 4}},
    {"pretrainer": "byol"},
    {"pretrainer": "simsiam", "pretrain_branches": "both"},
    {"head": "safa", "dim": 256},
    {"loss": [("soft_triplet", 1.0), ("uniformity", 0.001)]},
    {"loss": [("infonce", 1.0)]},
    {"loss": [("xmoco", 1.0)], "loss_options": {"xmoco": {"queue_size": 64}}},
    {"finetune_aug": "mocov2"},
    {"finetune_aug": "mocov2-nocrop"},
    {"finetune_aug": "geo-sync"},
    {"head": "gem", "dim": "auto"},
    {"head": "netvlad", "head_options": {"clusters": 4}, "dim": 64},
    {"head": "mixvpr", "dim": 64},
    {"head": "salad", "head_options": {"clusters": 4}, "dim": 96},  # 64 (token) + 4 clusters x 8
    {"sampler": "gps_neighbours", "sampler_options": {"count": 3, "radius": 5.0}},
    {"preset": "sample4geo", "head": "gem", "dim": "auto", "epochs": 2, "sampler_options": {"count": 3, "pool": 6}},
], ids=lambda o: "-".join(str(v) for v in o.values())[:40])
def test_every_built_in_runs_in_the_smoke_preset(toy, tmp_path, options):
    run_dir = run(RunSpec(**{**FAST, "epochs": 1, **options}), tmp_path, quiet=True)
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "finished" and 0 <= record["metrics"]["R@1"] <= 100
    if options.get("preset") == "sample4geo":  # hard negatives mined in epoch 2, and timed
        assert record["spec"]["shared_backbone"] and record["spec"]["sampler"] == "hard_negatives"
        assert 0 < record["timings"]["mining_s"] < record["timings"]["finetune_s"]
