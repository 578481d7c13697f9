"""A head plugin whose output has the wrong shape, or NaN/inf, is named where the embeddings are made.

Toy heads are registered through the registry, as a third-party package's
would be, and built into the smoke preset's tiny resnet10t model: what each
returns is known by construction, so the expected error is too.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cvbench.contract.hookspecs import hookimpl
from cvbench.errors import PluginError
from cvbench.runs.assemble import build_model, resolve_spec
from cvbench.training.finetune import FinetuneForward, Objective, finetune_step
from cvbench.training.loop import LossMonitor
from conftest import cli_spec

DIM = 16
BATCH = 4


class PooledHead(nn.Module):
    """Average-pools the map and projects to ``dim``; ``reshape`` turns that into the (wrong) output under test."""

    def __init__(self, in_channels, feature_hw, dim, reshape=lambda z: z):
        super().__init__()
        self.proj = nn.Linear(in_channels, dim)
        self.reshape = reshape

    def forward(self, feature_map):
        return self.reshape(self.proj(feature_map.mean(dim=(2, 3))))


def poison(value):
    def put(z):
        z = z.clone()
        z[1, 0] = value
        return z
    return put


TOY_HEADS = {
    "right": lambda z: z,
    "one_too_wide": lambda z: torch.cat([z, z[:, :1]], dim=1),        # (B, dim + 1)
    "two_columns": lambda z: torch.stack([z, z], dim=2),               # (B, dim, 2)
    "drops_a_row": lambda z: z[1:],                                    # (B - 1, dim)
    "nan_row": poison(float("nan")),
    "inf_row": poison(float("inf")),
}


class ToyHeads:
    @hookimpl
    def register_heads(self, register):
        for name, reshape in TOY_HEADS.items():
            register(name, lambda c, hw, dim, reshape=reshape: PooledHead(c, hw, dim, reshape))


def toy_model(registry, head: str):
    registry.add(ToyHeads(), source="toy-heads")
    spec = resolve_spec(cli_spec(preset="smoke", head=head, dim=str(DIM)))
    return spec, build_model(spec)


def images(branch: str) -> torch.Tensor:
    return torch.rand(BATCH, 3, 32, 128) if branch == "ground" else torch.rand(BATCH, 3, 64, 64)


@pytest.mark.parametrize("head, got", [("one_too_wide", (BATCH, DIM + 1)), ("two_columns", (BATCH, DIM, 2)),
                                       ("drops_a_row", (BATCH - 1, DIM))])
def test_a_head_of_the_wrong_shape_is_named_with_the_expected_shape(registry, head, got):
    _, model = toy_model(registry, head)
    model.eval()
    with torch.no_grad(), pytest.raises(PluginError) as info:
        model.embed("aerial", images("aerial"))
    assert str(info.value) == (f"head {head!r} returned shape {got} for a batch of {BATCH} aerial images; "
                               f"expected (batch, dim) = ({BATCH}, {DIM}) (--dim {DIM})")


@pytest.mark.parametrize("head", ["nan_row", "inf_row"])
@pytest.mark.parametrize("branch", ["ground", "aerial"])
def test_a_head_with_non_finite_output_is_named_with_its_branch(registry, head, branch):
    _, model = toy_model(registry, head)
    model.eval()
    with torch.no_grad(), pytest.raises(PluginError) as info:
        model.embed(branch, images(branch))
    message = str(info.value)
    assert message.startswith(f"head {head!r} output had NaN/inf for the {branch} branch (row 1 of a batch of 4)")
    assert "its input feature map was finite" in message and "\n" not in message


def test_the_first_training_step_checks_the_head_before_the_loss_sees_it(registry):
    spec, model = toy_model(registry, "nan_row")
    forward = FinetuneForward(model.train(), Objective.from_spec(spec))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(PluginError, match="head 'nan_row' output had NaN/inf for the ground branch"):
        finetune_step(forward, optimizer, list(model.parameters()), torch.rand(BATCH, 3, 32, 128),
                      torch.rand(BATCH, 3, 64, 64), torch.device("cpu"), LossMonitor("fine-tuning"))


def test_a_right_head_passes_and_training_checks_finiteness_once_per_branch(registry, monkeypatch):
    _, model = toy_model(registry, "right")
    calls = []
    monkeypatch.setattr(torch, "isfinite", lambda t, real=torch.isfinite: calls.append(1) or real(t))
    model.train()
    for _ in range(3):
        z = model.embed("ground", images("ground"))
    assert z.shape == (BATCH, DIM) and torch.allclose(z.norm(dim=1), torch.ones(BATCH))
    assert len(calls) == 1  # only the first training step pays for the host synchronisation
    model.eval()
    with torch.no_grad():
        model.embed("ground", images("ground"))
    assert len(calls) == 2  # every evaluation batch is checked


def test_a_vit_backbone_at_the_default_presets_sizes_embeds_both_views():
    """``--backbone vit_tiny_patch16_224`` with the default preset's 32x128 panoramas and 64x64 tiles: 16x16
    patches give 2x8 and 4x4 token maps (timm's dynamic image size), not timm's AssertionError for 224x224."""
    spec = resolve_spec(cli_spec(backbone="vit_tiny_patch16_224"))
    assert (spec.preset, spec.ground_size, spec.aerial_size) == ("default", (32, 128), (64, 64))
    model = build_model(spec).eval()
    assert model.ground.backbone.feature_hw((32, 128)) == (2, 8)
    with torch.no_grad():
        for branch in ("ground", "aerial"):
            assert model.embed(branch, images(branch)).shape == (BATCH, spec.dim)
