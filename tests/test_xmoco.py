"""The cross-view MoCo loss of thesis appendix 6.5 on a tiny two-branch model."""

from __future__ import annotations

import numpy as np
import pluggy
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cvbench
from cvbench.contract import hookspecs
from cvbench.errors import CvbenchError, SpecError
from cvbench_plugins.losses import xmoco
from cvbench_plugins.losses.xmoco import CrossViewMoCo

BATCH, DIM = 3, 6


def branch(channels: int) -> nn.Module:
    """Images (B, 3, H, W) -> embeddings (B, DIM), not normalised."""
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, DIM),
    )


class TwoBranch(nn.Module):
    """The engine's two-branch model, reduced to what xmoco relies on: ``.ground`` and ``.aerial``."""

    def __init__(self) -> None:
        super().__init__()
        self.ground = branch(4)
        self.aerial = branch(5)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(BATCH, 3, 8, 16), torch.randn(BATCH, 3, 10, 10)  # panoramas, tiles


def embed(model: TwoBranch, ground: torch.Tensor, aerial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return F.normalize(model.ground(ground), dim=1), F.normalize(model.aerial(aerial), dim=1)


def numpy_infonce(query: np.ndarray, positive: np.ndarray, negatives: np.ndarray, temperature: float) -> float:
    """Eq 3.1 written out with an explicit logsumexp, averaged over the queries."""
    positive_logits = np.sum(query * positive, axis=1, keepdims=True)
    logits = np.concatenate([positive_logits, query @ negatives.T], axis=1) / temperature
    top = logits.max(axis=1, keepdims=True)
    return float(np.mean(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)) - logits[:, 0]))


@pytest.fixture
def setup() -> tuple[TwoBranch, CrossViewMoCo]:
    torch.manual_seed(0)
    model = TwoBranch()
    loss = CrossViewMoCo(queue_size=5, momentum=0.9)
    loss.attach(model)
    return model, loss


def test_module_registers_the_loss() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(xmoco)
    names: dict[str, object] = {}
    manager.hook.register_losses(register=lambda name, factory, summary="": names.__setitem__(name, factory))
    assert names == {"xmoco": CrossViewMoCo}


def test_the_installed_entry_point_builds_the_loss() -> None:
    loss = cvbench.create("loss", "xmoco", queue_size=8)
    assert isinstance(loss, CrossViewMoCo) and loss.ground_queue.size == 8


def test_defaults() -> None:
    loss = CrossViewMoCo()
    assert (loss.temperature, loss.momentum) == (0.07, 0.999)
    assert loss.ground_queue.size == loss.aerial_queue.size == 4096
    assert loss.needs_images is True


def test_key_encoders_are_frozen_copies_kept_in_state_dict(setup) -> None:
    model, loss = setup
    assert not any(p.requires_grad for p in loss.parameters())
    pairs = ((loss.ground_key_encoder, model.ground), (loss.aerial_key_encoder, model.aerial))
    for key_encoder, query_encoder in pairs:
        assert key_encoder is not query_encoder
        assert all(torch.equal(k, q) for k, q in zip(key_encoder.parameters(), query_encoder.parameters()))
    state = loss.state_dict()
    expected = {"ground_key_encoder.0.weight", "aerial_key_encoder.5.bias", "ground_queue.keys", "aerial_queue.ptr"}
    assert expected <= set(state)
    assert not any(key.startswith(("ground.", "aerial.")) for key in state)  # the model's own weights stay the model's


def test_loss_is_two_infonce_terms_by_hand(setup) -> None:
    model, loss = setup
    ground, aerial = batch()
    z_ground, z_aerial = embed(model, ground, aerial)
    with torch.no_grad():  # the key encoders are still exact copies of the query encoders
        aerial_keys, ground_keys = F.normalize(model.aerial(aerial), dim=1), F.normalize(model.ground(ground), dim=1)
    value = loss(z_ground, z_aerial, ground, aerial)
    expected = numpy_infonce(z_ground.detach().numpy(), aerial_keys.numpy(), loss.aerial_queue.keys.numpy(), 0.07)
    expected += numpy_infonce(z_aerial.detach().numpy(), ground_keys.numpy(), loss.ground_queue.keys.numpy(), 0.07)
    assert torch.isfinite(value) and value.item() == pytest.approx(expected, rel=1e-5)


def test_step_trains_queries_moves_keys_across_views_and_fills_queues(setup) -> None:
    model, loss = setup
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    ground, aerial = batch()
    with torch.no_grad():
        aerial_keys, ground_keys = F.normalize(model.aerial(aerial), dim=1), F.normalize(model.ground(ground), dim=1)
    value = loss(*embed(model, ground, aerial), ground, aerial)
    value.backward()
    assert model.ground[0].weight.grad is not None and model.aerial[0].weight.grad is not None
    assert all(p.grad is None for p in loss.parameters())
    ground_before = [p.clone() for p in loss.ground_key_encoder.parameters()]
    aerial_before = [p.clone() for p in loss.aerial_key_encoder.parameters()]
    optimizer.step()
    loss.after_step()
    # eq 3.2 with m = 0.9: k' follows the ground query encoder q, k follows the aerial one q'
    for key, old, query in zip(loss.ground_key_encoder.parameters(), ground_before, model.ground.parameters()):
        assert torch.allclose(key, 0.9 * old + 0.1 * query)
    for key, old, query in zip(loss.aerial_key_encoder.parameters(), aerial_before, model.aerial.parameters()):
        assert torch.allclose(key, 0.9 * old + 0.1 * query)
    assert torch.allclose(loss.ground_queue.keys[:BATCH], ground_keys)
    assert torch.allclose(loss.aerial_queue.keys[:BATCH], aerial_keys)
    assert int(loss.ground_queue.ptr) == int(loss.aerial_queue.ptr) == BATCH


def test_queues_wrap_around(setup) -> None:
    model, loss = setup
    for _ in range(2):  # 2 x 3 keys into queues of 5
        ground, aerial = batch()
        loss(*embed(model, ground, aerial), ground, aerial).backward()
        loss.after_step()
    assert int(loss.ground_queue.ptr) == int(loss.aerial_queue.ptr) == 1
    assert torch.allclose(loss.aerial_queue.keys.norm(dim=1), torch.ones(5))


def test_resume_restores_key_encoders_and_queues(setup) -> None:
    model, loss = setup
    ground, aerial = batch()
    loss(*embed(model, ground, aerial), ground, aerial).backward()
    with torch.no_grad():
        model.aerial[5].bias.add_(1.0)
    loss.after_step()
    resumed = CrossViewMoCo(queue_size=5, momentum=0.9)
    resumed.attach(model)
    resumed.load_state_dict(loss.state_dict())
    assert torch.equal(resumed.aerial_queue.keys, loss.aerial_queue.keys) and int(resumed.aerial_queue.ptr) == BATCH
    assert torch.equal(resumed.aerial_key_encoder[5].bias, loss.aerial_key_encoder[5].bias)


def test_calling_before_attach_names_the_missing_step() -> None:
    loss = CrossViewMoCo()
    with pytest.raises(CvbenchError, match="attach"):
        loss(torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    with pytest.raises(CvbenchError, match="ground"):
        loss.attach(nn.Linear(2, 2))


@pytest.mark.parametrize(
    "options, culprit",
    [({"temperature": -1.0}, "temperature"), ({"queue_size": 0}, "queue_size"), ({"momentum": 1.0}, "momentum")],
)
def test_bad_options_raise_spec_error(options: dict, culprit: str) -> None:
    with pytest.raises(SpecError, match=culprit):
        CrossViewMoCo(**options)
