"""Starting a branch from a checkpoint folder, and the supervised ImageNet stand-in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from toy_dataset import ToyPlugin

from cvbench.contract.registry import create
from cvbench.errors import SpecError
from cvbench.runs.assemble import build_model, resolve_spec
from cvbench.runs.folder import start_checkpoint
from cvbench.runs.runner import run
from cvbench.spec import RunSpec
from cvbench.training.checkpoint import save_weights
from cvbench.training.pretrain import _labels

FAST = dict(preset="smoke", dataset="toy", backbone="resnet10t", ground_size=(16, 64), aerial_size=(32, 32),
            dim=64, batch_size=8, epochs=1, head="siamese_vgg", pretrain_batch_size=8, pretrain_epochs=1)


def test_start_checkpoint_reads_files_folders_and_run_folders(tmp_path):
    assert start_checkpoint("random", "ground") is None and start_checkpoint("imagenet", "aerial") is None
    file = tmp_path / "backbone.safetensors"
    save_weights(file, nn.Linear(2, 2))
    assert start_checkpoint(str(file), "ground") == file
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for branch in ("ground", "aerial"):
        save_weights(run_dir / "checkpoints" / f"pretrained_{branch}.safetensors", nn.Linear(2, 2))
    assert start_checkpoint(str(run_dir), "aerial") == run_dir / "checkpoints" / "pretrained_aerial.safetensors"
    assert start_checkpoint(str(run_dir / "checkpoints"), "ground").name == "pretrained_ground.safetensors"
    with pytest.raises(SpecError, match="no such checkpoint file"):
        start_checkpoint(str(tmp_path / "missing.safetensors"), "ground")
    with pytest.raises(SpecError, match="pretrained_ground.safetensors"):
        start_checkpoint(str(tmp_path), "ground", "base_init")


def test_a_pretrain_run_folder_is_a_start_for_both_branches(registry, tmp_path):
    registry.add(ToyPlugin(), source="toy")
    stage = run(RunSpec(**FAST, pretrainer="mocov2", pretrain_branches="both",
                        pretrain_options={"queue_size": 64, "bn_splits": 4}), tmp_path, quiet=True, stage="pretrain",
                finetune_stage=False)
    spec = resolve_spec(RunSpec(**FAST, base_init=str(stage)))
    model = build_model(spec)
    from safetensors.torch import load_file

    for branch in ("ground", "aerial"):
        saved = load_file(str(stage / "checkpoints" / f"pretrained_{branch}.safetensors"))
        loaded = model.branch(branch).backbone.state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in saved.items())
    weight = next(key for key in saved if key.endswith("conv1.0.weight") or key.endswith("conv1.weight"))
    assert not torch.equal(model.ground.backbone.state_dict()[weight], model.aerial.backbone.state_dict()[weight])


def test_labels_are_class_indices_of_the_sorted_names():
    meta = pd.DataFrame({"scene": ["road", "water", "road", "building"]})
    classes, labels = _labels(meta, "scene", "supervised", "aerial")
    assert classes == ["building", "road", "water"] and labels.tolist() == [1, 2, 1, 0]
    with pytest.raises(SpecError, match="no such column.*it has: scene"):
        _labels(meta, "material", "supervised", "aerial")
    with pytest.raises(SpecError, match="1 'scene' class"):
        _labels(pd.DataFrame({"scene": ["road", "road"]}), "scene", "supervised", "ground")


def test_supervised_loss_is_cross_entropy_of_both_views():
    backbone = nn.Conv2d(3, 4, 1)
    model = create("pretrainer", "supervised", backbone, 4, classes=["a", "b", "c"])
    assert model.backbone is backbone and model.classifier.out_features == 3
    view1, view2 = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 1, 0])
    expected = (nn.functional.cross_entropy(model.classifier(backbone(view1).mean((2, 3))), labels) +
                nn.functional.cross_entropy(model.classifier(backbone(view2).mean((2, 3))), labels)) / 2
    assert torch.allclose(model(view1, view2, labels), expected)
    first, second = model.augmentations((16, 32))
    out = first(torch.randint(0, 256, (3, 16, 32), dtype=torch.uint8))
    assert out.shape == (3, 16, 32) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


def test_supervised_pretraining_learns_the_labels_of_a_toy_set(registry, tmp_path):
    """On the synthetic world's scene labels the stand-in run finishes and its loss is below chance."""
    run_dir = run(RunSpec(preset="smoke", pretrainer="supervised", pretrain_branches="aerial", pretrain_epochs=2,
                          max_train_pairs=64, pretrain_batch_size=16,
                          pretrain_data="train",
                          data_options={"train_pairs": 64, "val_pairs": 16, "num_train_cities": 1,
                                        "num_val_cities": 1, "city_size": 384, "styles": "downtown,industrial"}),
                  tmp_path, quiet=True, stage="pretrain", finetune_stage=False)
    import json

    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "finished"
    assert record["pretraining"]["aerial"]["loss"] < np.log(3)  # three scene classes here: chance is log 3
