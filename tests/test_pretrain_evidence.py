"""What the engine gives a pre-training stage and records of it: total steps, image sets, loss curve, probe."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from cvbench_plugins.pretrainers.byol import BYOL
from torch import nn
from toy_dataset import ToyPlugin

from cvbench.contract.hookspecs import hookimpl
from cvbench.data import ArrayImages
from cvbench.data.loaders import Reader
from cvbench.errors import SpecError
from cvbench.evaluation.probe import ProbeViews, instance_retrieval, learned
from cvbench.runs.assemble import resolve_spec
from cvbench.runs.runner import run
from cvbench.runs.subsets import labelled_share, load_data, open_dataset, pretraining_set
from cvbench.spec import RunSpec

FAST = dict(preset="smoke", dataset="toy", backbone="resnet10t", ground_size=(16, 64), aerial_size=(32, 32),
            dim=64, batch_size=8, epochs=1, pretrain_batch_size=8, head="siamese_vgg")
BUILT: list[BYOL] = []


class SpyBYOL(BYOL):
    """BYOL that remembers each instance, so a test can read its schedule after the engine ran it."""

    def __init__(self, backbone: nn.Module, feature_dim: int, *, total_steps: int = 0, **options) -> None:
        super().__init__(backbone, feature_dim, total_steps=total_steps, proj_hidden=32, pred_hidden=32, **options)
        BUILT.append(self)


class SpyPlugin:
    @hookimpl
    def register_pretrainers(self, register):
        register("byol_spy", SpyBYOL)


@pytest.fixture
def toy(registry):
    registry.add(ToyPlugin(), source="toy-tests")
    registry.add(SpyPlugin(), source="spy-tests")
    BUILT.clear()
    yield registry


def test_the_engine_gives_byol_the_run_length_and_its_momentum_ends_at_one(toy, tmp_path):
    spec = RunSpec(**FAST, pretrainer="byol_spy", pretrain_epochs=3, pretrain_data="train")
    folder = run(spec, tmp_path, quiet=True, stage="pretrain", finetune_stage=False)
    (byol,) = BUILT
    steps = 3 * (48 // 8)  # three epochs of six whole batches of the 48 toy tiles
    assert byol.total_steps == steps and int(byol.step) == steps
    assert byol.current_momentum() == pytest.approx(1.0)  # tau_K = 1 - (1 - 0.996)(cos(pi) + 1) / 2
    record = json.loads((folder / "result.json").read_text())["pretraining"]["aerial"]
    assert record["steps"] == steps and len(record["losses"]) == 3


def test_an_explicit_total_steps_option_wins(toy, tmp_path):
    spec = RunSpec(**FAST, pretrainer="byol_spy", pretrain_epochs=1, pretrain_options={"total_steps": 1000})
    run(spec, tmp_path, quiet=True, stage="pretrain", finetune_stage=False)
    assert BUILT[0].total_steps == 1000


def test_the_record_holds_the_loss_curve_and_a_probe_before_and_after(toy, tmp_path):
    spec = RunSpec(**FAST, pretrainer="mocov2", pretrain_epochs=2, pretrain_lr=0.05,
                   pretrain_options={"queue_size": 16, "bn_splits": 2})
    record = json.loads((run(spec, tmp_path, quiet=True, stage="pretrain", finetune_stage=False)
                         / "result.json").read_text())["pretraining"]["aerial"]
    assert len(record["losses"]) == 2 and record["loss"] == record["losses"][-1]
    probe = record["probe"]
    assert probe["images"] == 48 and probe["chance"] == pytest.approx(100 / 48)  # all 48 val tiles of the toy set
    assert 0 <= probe["before"] <= 100 and 0 <= probe["after"] <= 100
    assert record["learned"] == learned(probe, record["losses"])


def test_the_probe_scores_top1_instance_retrieval_by_hand():
    images = ArrayImages(np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8))
    views = ProbeViews.draw(images, Reader((16, 16)), seed=3)
    again = ProbeViews.draw(images, Reader((16, 16)), seed=3)
    assert torch.equal(views.first, again.first) and not torch.equal(views.first, views.second)
    state = torch.random.get_rng_state()
    ProbeViews.draw(images, Reader((16, 16)), seed=4)
    assert torch.equal(state, torch.random.get_rng_state())  # drawing the views leaves training's RNG alone
    flatten = nn.Identity()  # "features" = the normalised pixels, pooled to their mean colour
    first = nn.functional.normalize(_normalised(views.first).mean(dim=(2, 3)), dim=1)
    second = nn.functional.normalize(_normalised(views.second).mean(dim=(2, 3)), dim=1)
    expected = float((torch.argmax(first @ second.T, 1) == torch.arange(12)).float().mean() * 100)
    assert instance_retrieval(flatten, views, torch.device("cpu")) == pytest.approx(expected)


def _normalised(batch: torch.Tensor) -> torch.Tensor:
    from cvbench.data.loaders import normalize

    return normalize(batch)


def test_learned_needs_the_probe_up_and_the_loss_down():
    assert learned({"before": 10, "after": 20}, [3.0, 2.0])
    assert not learned({"before": 10, "after": 10}, [3.0, 2.0])
    assert not learned({"before": 10, "after": 20}, [3.0, 3.5])
    assert learned({"before": 10, "after": 20}, [3.0])  # one epoch: the probe alone decides


def test_all_sees_both_subsets_each_capped(toy):
    spec = resolve_spec(RunSpec(**FAST, pretrainer="mocov2", max_pretrain_images=20, pretrain_data="all"))
    dataset, split = open_dataset(spec)
    data = load_data(spec, dataset, split)
    images, _, indices = pretraining_set(spec, data, "aerial")
    assert len(indices) == 40 and len(set(indices.tolist())) == 40
    assert (indices < 48).sum() == 20 and (indices >= 48).sum() == 20  # 20 train tiles, then 20 of val
    for subset in ("train", "val"):
        spec.pretrain_data = subset
        assert len(pretraining_set(spec, data, "aerial")[2]) == 20


def test_label_shares_are_nested_seeded_and_leave_the_other_subsets_alone(toy):
    base = resolve_spec(RunSpec(**FAST, max_train_pairs=40))
    shares = {}
    for fraction in (0.25, 0.5, 1.0):
        spec = resolve_spec(RunSpec(**FAST, max_train_pairs=40, train_fraction=fraction))
        dataset, split = open_dataset(spec)
        data = load_data(spec, dataset, split)
        shares[fraction] = set(data.train_indices.tolist())
        assert len(shares[fraction]) == math.ceil(fraction * 40)
        assert data.val_queries.tolist() == load_data(base, dataset, split).val_queries.tolist()
    assert shares[0.25] < shares[0.5] < shares[1.0]
    other_seed = resolve_spec(RunSpec(**FAST, max_train_pairs=40, train_fraction=0.25, seed=1))
    assert set(labelled_share(np.arange(40), other_seed).tolist()) != set(labelled_share(np.arange(40), resolve_spec(
        RunSpec(**FAST, max_train_pairs=40, train_fraction=0.25))).tolist())


def test_a_share_smaller_than_a_batch_is_refused(toy):
    spec = resolve_spec(RunSpec(**FAST, train_fraction=0.1))  # 5 of 48 pairs, batch 8
    with pytest.raises(SpecError, match="train-fraction 0.1 leaves 5 of 48"):
        labelled_share(np.arange(48), spec)
    with pytest.raises(SpecError, match="train-fraction"):
        resolve_spec(RunSpec(**FAST, train_fraction=1.5))


def test_the_run_says_in_one_line_whether_its_pre_training_learned():
    from cvbench.training.pretrain import pretraining_summary

    flat = {"losses": [7.13, 8.70], "probe": {"before": 1.5625, "after": 1.171875, "chance": 0.390625},
            "learned": False}
    line = pretraining_summary("aerial", "mocov2", flat)
    assert line.startswith("pre-trained aerial (mocov2): loss 7.130 -> 8.700, probe R@1 1.56% -> 1.17% "
                           "(chance 0.39%): ")
    assert "did not learn" in line
    improving = {**flat, "losses": [5.0, 4.0], "probe": {**flat["probe"], "after": 3.0}, "learned": True}
    assert pretraining_summary("ground", "byol", improving).endswith("-> 3.00% (chance 0.39%): learned")
    one_epoch = pretraining_summary("aerial", "mocov2", {**improving, "losses": [6.845]})
    assert one_epoch.startswith("pre-trained aerial (mocov2): loss 6.845 (one epoch), probe R@1 1.56% -> 3.00%")
