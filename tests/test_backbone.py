"""Backbones: any timm name (tags, hf-hub, ViTs), pretrained weights from a file, clear errors offline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from cvbench.errors import CvbenchError, SpecError
from cvbench.nn.backbone import check_name, create_backbone


def test_feature_map_shape_and_stage():
    last = create_backbone("resnet10t")
    assert last.out_channels == 512 and last.feature_hw((64, 64)) == (2, 2)
    earlier = create_backbone("resnet10t", stage=2)
    assert earlier.feature_hw((32, 128)) == (4, 16)
    assert earlier(torch.zeros(2, 3, 32, 128)).shape == (2, earlier.out_channels, 4, 16)


def test_unknown_timm_name_suggests_close_ones():
    with pytest.raises(SpecError, match="resnet18"):
        create_backbone("resnet1")


def test_pretrained_tags_and_hub_names_are_timm_names():
    for name in ("resnet50.a1_in1k", "convnext_base.fb_in22k_ft_in1k_384", "vit_small_patch14_dinov2.lvd142m",
                 "hf-hub:timm/vit_small_patch14_dinov2.lvd142m"):
        check_name(name)  # no error: timm resolves these when it creates the model
    with pytest.raises(SpecError, match="not a timm model name"):
        check_name("resnet1.a1_in1k")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_weights_from_a_file(tmp_path, suffix):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / f"resnet10t{suffix}"
    if suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    backbone = create_backbone("resnet10t", init="imagenet", weights=str(path))
    assert torch.equal(backbone.model.conv1[0].weight, source.conv1[0].weight)


def test_a_vit_gives_its_patch_tokens_as_a_map_at_any_size_its_patches_divide():
    vit = create_backbone("vit_small_patch14_dinov2")
    assert vit.out_channels == 384 and vit.patch == 14
    assert vit.feature_hw((28, 56)) == (2, 4) and vit.feature_hw((42, 42)) == (3, 3)
    assert vit(torch.zeros(1, 3, 28, 56)).shape == (1, 384, 2, 4)
    with pytest.raises(SpecError) as info:
        vit.feature_hw((30, 56), "--ground-size")
    assert str(info.value) == ("--ground-size 30x56: vit_small_patch14_dinov2 cuts images into 14x14 patches, so both "
                               "sides must be multiples of 14 (e.g. 28x56)")


def test_dinov3_vits_take_the_same_path():
    vit = create_backbone("vit_small_patch16_dinov3")  # timm's Eva-based DINOv3, with rotary position embeddings
    assert vit.out_channels == 384 and vit.patch == 16
    assert vit(torch.zeros(1, 3, 32, 128)).shape == (1, 384, 2, 8) and vit.feature_hw((64, 64)) == (4, 4)


def test_a_size_timm_refuses_is_one_line_naming_the_option():
    fixed = create_backbone("vit_tiny_patch16_224", options={"dynamic_img_size": False})
    with pytest.raises(SpecError) as info:
        fixed.feature_hw((32, 128), "--ground-size")
    message = str(info.value)
    assert message.startswith("--ground-size 32x128: backbone vit_tiny_patch16_224 cannot take this size")
    assert "\n" not in message and "AssertionError" in message
    assert create_backbone("vit_tiny_patch16_224").feature_hw((32, 128)) == (2, 8)  # dynamic size, the default
    with pytest.raises(SpecError, match="--backbone-option"):
        create_backbone("resnet10t", options={"no_such_option": 1})


def test_a_frozen_backbone_keeps_its_weights_and_statistics():
    backbone = create_backbone("resnet10t", stage=2).freeze()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.train()
    assert not backbone.training and not any(p.requires_grad for p in backbone.parameters())
    backbone(torch.rand(4, 3, 32, 32))  # batch norm in eval mode: running statistics untouched
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())


def test_missing_weights_say_what_to_download(tmp_path):
    with pytest.raises(CvbenchError, match="no such file"):
        create_backbone("resnet10t", init="imagenet", weights=str(tmp_path / "none.pth"))
    # Offline with an empty cache, in a fresh interpreter (the hub reads HF_HUB_OFFLINE at import).
    code = ("from cvbench.nn.backbone import check_name, create_backbone\n"
            "from cvbench.errors import CvbenchError\n"
            "try:\n    create_backbone('resnet10t', init='imagenet')\n"
            "except CvbenchError as exc:\n    print(exc)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    message = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             timeout=120).stdout
    assert "timm.create_model('resnet10t', pretrained=True)" in message and "--pretrained-weights" in message
