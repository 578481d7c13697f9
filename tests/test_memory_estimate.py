"""Image sizes have an upper bound, and the memory one batch needs is estimated and checked before any compute.

The estimate is checked against a hand count on a toy network whose every
layer output is known, and the refusal against the run folder it must not
leave behind.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import cli, cli_spec
from cvbench.errors import SpecError
from cvbench.nn import memory
from cvbench.nn.memory import Footprint, footprint, parameter_bytes
from cvbench.nn.model import Branch, TwoBranchNet
from cvbench.runs.assemble import resolve_spec
from cvbench.training import batch_memory


def toy_backbone() -> nn.Module:
    """On a 3x8x8 image: conv 4x8x8, ReLU 4x8x8, pool 4x4x4, strided conv 8x2x2, in-place ReLU (writes in place)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(inplace=True))


# by hand: the image 3*8*8 = 192, then 256 + 256 + 64 + 32 (the in-place ReLU adds nothing); the largest is 256
TOY_STORED, TOY_LARGEST = 192 + 256 + 256 + 64 + 32, 256
TOY_PARAMETERS = (4 * 3 * 9 + 4) + (8 * 4 * 9 + 8)  # 408


@pytest.mark.parametrize("option", ["ground_size", "aerial_size"])
@pytest.mark.parametrize("size", ["100000x100000", "4097x64", "64x4097"])
def test_an_image_side_above_4096_is_refused_naming_the_option(option, size):
    with pytest.raises(SpecError) as info:
        resolve_spec(cli_spec(preset="smoke", **{option: size}))
    flag = "--" + option.replace("_", "-")
    assert str(info.value) == (f"{flag} {size}: each side must be at most 4096 pixels (the supported datasets' "
                               "images are at most 2048 wide)")


def test_4096_is_still_a_size():
    assert resolve_spec(cli_spec(preset="smoke", ground_size="4096x4096")).ground_size == (4096, 4096)


def test_the_footprint_counts_every_layer_output_as_a_hand_count_does():
    assert footprint(toy_backbone(), (8, 8)) == Footprint(stored=TOY_STORED, largest=TOY_LARGEST)
    assert Footprint(TOY_STORED, TOY_LARGEST).training_bytes(batch=5, value_bytes=4) == 5 * 800 * 4
    assert Footprint(TOY_STORED, TOY_LARGEST).inference_bytes(batch=5, value_bytes=2) == 5 * 2 * 256 * 2
    # Adam keeps a gradient and two moments per trainable weight; a frozen weight is only itself
    backbone = toy_backbone()
    assert parameter_bytes(backbone, training=True) == 4 * TOY_PARAMETERS * 4
    backbone[0].requires_grad_(False)
    assert parameter_bytes(backbone, training=True) == 4 * (8 * 4 * 9 + 8) * 4 + (4 * 3 * 9 + 4) * 4


def test_a_known_backbone_counts_its_stage_maps():
    """resnet10t to its second stage at 64x64: whatever else it counts, it holds its stage maps (stride 2, 4, 8)."""
    from cvbench.nn.backbone import create_backbone

    counted = footprint(create_backbone("resnet10t", stage=2), (64, 64))
    stage_maps = 64 * 32 * 32 + 64 * 16 * 16 + 128 * 8 * 8  # act1, layer1, layer2 of timm's ResNet
    assert stage_maps < counted.stored < 20 * stage_maps
    assert counted.largest == 64 * 32 * 32  # the stem's 64-channel map at half the image side


def test_the_batch_estimate_adds_both_branches_and_the_weights():
    spec = resolve_spec(cli_spec(preset="smoke", ground_size="8x8", aerial_size="8x8", batch_size=3,
                                 eval_batch_size=2, head="gem"))
    model = TwoBranchNet(Branch(toy_backbone(), nn.Flatten()), Branch(toy_backbone(), nn.Flatten()))
    estimate = batch_memory.batch_estimate(spec, model, torch.device("cpu"))
    assert (estimate.stage, estimate.option, estimate.batch) == ("fine-tuning", "--batch-size", 3)
    assert estimate.activations == 3 * (TOY_STORED + TOY_STORED) * 4  # float32 on the CPU
    assert estimate.weights == 2 * TOY_PARAMETERS * 4 * 4


def test_available_memory_reads_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (5 * 2**30, 80 * 2**30))
    assert memory.available_bytes(torch.device("cuda")) == 5 * 2**30
    assert memory.available_bytes(torch.device("cpu")) > 0


def test_a_batch_too_large_for_the_machine_fails_before_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(batch_memory, "available_bytes", lambda device: 2**20)
    runs = tmp_path / "runs"
    result = cli("run", "--preset", "smoke", "--runs-dir", str(runs), "--quiet")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    # evaluation holds about twice the largest layer output per image: resnet10t's stem, 64 x 32 x 32 on a
    # 64x64 tile (and on a 32x128 panorama's 16x64), in float32, for 256 images
    activations = 256 * 2 * (64 * 32 * 32) * 4
    assert activations == 128 * 2**20
    assert line.startswith("error: one evaluation batch (--eval-batch-size 256) needs about "), line
    assert ": 128 MiB of activations at ground 32x128 and aerial 64x64 plus " in line
    assert line.endswith("but cpu has 1 MiB of RAM available: lower --eval-batch-size, --ground-size/--aerial-size or "
                         "--backbone-stage (an estimate; CVBENCH_MEMORY_CHECK=0 skips this check)"), line
    assert not runs.exists() or not any(runs.iterdir())
