"""Split BatchNorm, MoCov2's single-process stand-in for shuffling BN, against BatchNorm written out by hand."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from cvbench_plugins.pretrainers.mocov2 import MoCoV2
from cvbench.nn import has_batchnorm, split_forward

EPS = 1e-5  # nn.BatchNorm2d's default


def normalised(x: torch.Tensor) -> torch.Tensor:
    """Training-mode BatchNorm without affine part: (x - mean) / sqrt(biased variance + eps) per channel."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS)


def by_hand(x: torch.Tensor, splits: int) -> torch.Tensor:
    """``normalised`` applied to each of ``splits`` contiguous sub-batches on its own."""
    size = x.shape[0] // splits
    return torch.cat([normalised(x[i * size:(i + 1) * size]) for i in range(splits)])


def permutation_for(seed: int, batch: int) -> torch.Tensor:
    """The shuffle the helper draws after ``torch.manual_seed(seed)``: one ``torch.randperm`` (global generator)."""
    torch.manual_seed(seed)
    return torch.randperm(batch)


def test_contiguous_sub_batches_each_use_their_own_statistics() -> None:
    x = torch.randn(16, 3, 4, 5) * torch.tensor([1.0, 3.0, 0.5])[:, None, None] + 2.0
    bn = nn.BatchNorm2d(3, affine=False)
    split = split_forward(bn, x, 4)
    assert torch.allclose(split, by_hand(x, 4), atol=1e-5)
    assert torch.allclose(split_forward(bn, x, 1), normalised(x), atol=1e-5)
    assert not torch.allclose(split, normalised(x), atol=1e-2)


def test_shuffled_sub_batches_are_normalised_then_put_back_in_order() -> None:
    x = torch.randn(16, 3, 4, 5) + torch.arange(16.0)[:, None, None, None]  # rows differ, so the grouping shows
    bn = nn.BatchNorm2d(3, affine=False)
    torch.manual_seed(3)
    out = split_forward(bn, x, 4, shuffle=True)
    permutation = permutation_for(3, 16)
    expected = torch.empty_like(x)
    expected[permutation] = by_hand(x[permutation], 4)  # row permutation[j] of x sat at position j
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, by_hand(x, 4), atol=1e-2)


def test_split_forward_refuses_batches_that_do_not_split() -> None:
    identity = nn.Identity()
    for batch in (12, 20):  # fewer than 2 per sub-batch; not divisible by 8
        with pytest.raises(ValueError, match=rf"bn_splits=8 .*batch of {batch}.*--pretrain-batch-size"):
            split_forward(identity, torch.zeros(batch, 1), 8)
    assert split_forward(identity, torch.zeros(16, 1), 8).shape == (16, 1)


def test_has_batchnorm() -> None:
    assert has_batchnorm(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)))
    assert not has_batchnorm(nn.Sequential(nn.Conv2d(3, 3, 1), nn.GroupNorm(1, 3), nn.InstanceNorm2d(3)))


# --- in MoCoV2 --------------------------------------------------------------------------------


def bn_moco(bn_splits: int, queue_size: int = 32) -> MoCoV2:
    """MoCoV2 on one BatchNorm2d with identity weights (weight 1, bias 0): its features are the normalised input."""
    return MoCoV2(nn.BatchNorm2d(3), 3, queue_size=queue_size, proj_hidden=8, proj_dim=4, bn_splits=bn_splits)


def recording(module: nn.Module) -> list[torch.Tensor]:
    """Outputs of every call of ``module`` from now on, in call order."""
    seen: list[torch.Tensor] = []
    module.register_forward_hook(lambda _module, _inputs, output: seen.append(output.detach().clone()))
    return seen


def one_forward(model: MoCoV2, view1: torch.Tensor, view2: torch.Tensor, seed: int):
    """(loss, query-backbone outputs, key-backbone outputs, keys) of one training-mode forward after ``seed``."""
    queries, keys_seen = recording(model.backbone), recording(model.key_backbone)
    torch.manual_seed(seed)
    loss = model(view1, view2)
    model.after_step()  # enqueues the keys of this forward, as computed before the momentum update
    return loss, queries, keys_seen, model.queue.keys[: view1.shape[0]].clone()


def test_mocov2_splits_queries_in_order_and_keys_shuffled() -> None:
    torch.manual_seed(0)
    view1, view2 = torch.randn(16, 3, 4, 4) * 2 + 1, torch.randn(16, 3, 4, 4) - 1
    model = bn_moco(bn_splits=4)
    key_projector = model.key_projector
    with torch.no_grad():
        projector_before = [p.clone() for p in key_projector.parameters()]
    loss, queries, keys_seen, keys = one_forward(model, view1, view2, seed=5)
    assert torch.isfinite(loss)

    assert len(queries) == 4 and torch.allclose(torch.cat(queries), by_hand(view1, 4), atol=1e-5)
    permutation = permutation_for(5, 16)
    assert len(keys_seen) == 4 and torch.allclose(torch.cat(keys_seen), by_hand(view2[permutation], 4), atol=1e-5)

    features = torch.empty_like(view2)
    features[permutation] = by_hand(view2[permutation], 4)  # unshuffled
    with torch.no_grad():
        for p, old in zip(key_projector.parameters(), projector_before):
            p.copy_(old)  # the key head as it was during the forward
        expected = F.normalize(key_projector(features), dim=1)
    assert torch.allclose(keys, expected, atol=1e-5)


def test_mocov2_with_one_split_normalises_the_whole_batch() -> None:
    torch.manual_seed(0)
    view1, view2 = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
    _, queries, keys_seen, _ = one_forward(bn_moco(bn_splits=1), view1, view2, seed=5)
    assert len(queries) == 1 and torch.allclose(queries[0], normalised(view1), atol=1e-5)
    assert len(keys_seen) == 1 and torch.allclose(keys_seen[0], normalised(view2), atol=1e-5)
    torch.manual_seed(0)
    _, split_queries, _, _ = one_forward(bn_moco(bn_splits=4), view1, view2, seed=5)
    assert not torch.allclose(torch.cat(split_queries), queries[0], atol=1e-2)


def test_mocov2_split_batchnorm_still_trains_the_backbone() -> None:
    torch.manual_seed(0)
    model = bn_moco(bn_splits=4)
    model(torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)).backward()
    assert model.backbone.weight.grad is not None and model.backbone.weight.grad.abs().sum() > 0
    assert model.key_backbone.weight.grad is None


def test_mocov2_split_batchnorm_repeats_with_the_seed() -> None:
    def run(seed: int) -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        model = bn_moco(bn_splits=4)
        views = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
        loss, _, _, keys = one_forward(model, *views, seed=seed)
        return loss.item(), keys

    (loss_a, keys_a), (loss_b, keys_b), (_, keys_c) = run(1), run(1), run(2)
    assert loss_a == loss_b and torch.equal(keys_a, keys_b)
    assert not torch.equal(keys_a, keys_c)  # another shuffle, other key statistics


def test_mocov2_names_bn_splits_when_the_batch_cannot_split() -> None:
    model = MoCoV2(nn.BatchNorm2d(3), 3, queue_size=32, proj_hidden=8, proj_dim=4)  # default bn_splits=8
    for batch in (8, 20):
        with pytest.raises(ValueError, match=rf"bn_splits=8 .*batch of {batch}"):
            model(torch.randn(batch, 3, 4, 4), torch.randn(batch, 3, 4, 4))
    model.eval()  # running statistics: nothing to split, any batch goes
    model(torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4))


def test_mocov2_without_batchnorm_does_not_split() -> None:
    model = MoCoV2(nn.Conv2d(3, 3, 1), 3, queue_size=32, proj_hidden=8, proj_dim=4)  # default bn_splits=8
    assert torch.isfinite(model(torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)))


def test_mocov2_trains_a_timm_resnet_with_the_default_split() -> None:
    torch.manual_seed(0)
    backbone = timm.create_model("resnet10t", pretrained=False, num_classes=0, global_pool="")
    model = MoCoV2(backbone, backbone.num_features, queue_size=64, proj_hidden=16, proj_dim=4)
    loss = model(torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32))
    loss.backward()
    model.after_step()
    assert torch.isfinite(loss) and backbone.conv1[0].weight.grad is not None
