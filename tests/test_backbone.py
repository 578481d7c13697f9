"""Backbones: any timm name, strict ImageNet weights from a file, clear errors offline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from cvbench.errors import CvbenchError, SpecError
from cvbench.nn.backbone import create_backbone


def test_feature_map_shape_and_stage():
    last = create_backbone("resnet10t")
    assert last.out_channels == 512 and last.feature_hw((64, 64)) == (2, 2)
    earlier = create_backbone("resnet10t", stage=2)
    assert earlier.feature_hw((32, 128)) == (4, 16)
    assert earlier(torch.zeros(2, 3, 32, 128)).shape == (2, earlier.out_channels, 4, 16)


def test_unknown_timm_name_suggests_close_ones():
    with pytest.raises(SpecError, match="resnet18"):
        create_backbone("resnet1")


def test_imagenet_weights_from_a_file(tmp_path):
    import timm

    source = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "resnet10t.pth"
    torch.save(source.state_dict(), path)
    backbone = create_backbone("resnet10t", init="imagenet", imagenet_weights=str(path))
    assert torch.equal(backbone.model.conv1[0].weight, source.conv1[0].weight)


def test_missing_weights_say_what_to_download(tmp_path):
    with pytest.raises(CvbenchError, match="no such file"):
        create_backbone("resnet10t", init="imagenet", imagenet_weights=str(tmp_path / "none.pth"))
    # Offline with an empty cache, in a fresh interpreter (the hub reads HF_HUB_OFFLINE at import).
    code = ("from cvbench.nn.backbone import create_backbone\n"
            "from cvbench.errors import CvbenchError\n"
            "try:\n    create_backbone('resnet10t', init='imagenet')\n"
            "except CvbenchError as exc:\n    print(exc)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    message = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             timeout=120).stdout
    assert "timm.create_model('resnet10t', pretrained=True)" in message and "--imagenet-weights" in message
