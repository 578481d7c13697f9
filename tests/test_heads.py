"""Aggregation heads (appendix 6.1) against hand-written formulas and the thesis' own module."""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import pytest
import torch
from cvbench_plugins.heads import safa, siamese_vgg
from cvbench_plugins.heads.safa import SAFAHead, build_safa
from cvbench_plugins.heads.siamese_vgg import SiameseVGGHead, build_siamese_vgg
from torch import nn

from cvbench.contract.registry import Registry
from cvbench.errors import SpecError


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add(siamese_vgg, source="cvbench", name="cvbench:siamese_vgg")
    registry.add(safa, source="cvbench", name="cvbench:safa")
    return registry


def test_entry_points_name_these_modules() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="cvbench")}
    assert found["siamese_vgg"] == "cvbench_plugins.heads.siamese_vgg"
    assert found["safa"] == "cvbench_plugins.heads.safa"


def test_both_heads_register_with_a_summary(registry: Registry) -> None:
    assert registry.get("head", "siamese_vgg").factory is build_siamese_vgg
    assert registry.get("head", "safa").factory is build_safa
    assert registry.get("head", "safa").summary and registry.get("head", "siamese_vgg").summary
    assert isinstance(registry.create("head", "safa", 512, (2, 8), 4096), SAFAHead)


def test_unknown_options_are_spec_errors(registry: Registry) -> None:
    with pytest.raises(SpecError, match="no option 'width'.*hidden_dim"):
        registry.create("head", "siamese_vgg", 512, (7, 7), 128, width=3)
    with pytest.raises(SpecError, match="no option 'dimension'.*init"):
        registry.create("head", "safa", 512, (7, 7), 4096, dimension=8)


# --- siamese_vgg ------------------------------------------------------------


def test_siamese_vgg_parameter_count_matches_appendix() -> None:
    head = build_siamese_vgg(512, (7, 14), 128)
    assert n_params(head) == 512 * 512 + 512 + 512 * 128 + 128


def test_siamese_vgg_hidden_dim_option() -> None:
    head = build_siamese_vgg(64, (2, 2), 32, hidden_dim=16)
    assert n_params(head) == 64 * 16 + 16 + 16 * 32 + 32
    assert head(torch.randn(3, 64, 2, 2)).shape == (3, 32)


def test_siamese_vgg_accepts_any_spatial_size() -> None:
    head = build_siamese_vgg(512, (7, 14), 4096)
    assert head(torch.randn(2, 512, 7, 14)).shape == (2, 4096)
    assert head(torch.randn(2, 512, 3, 19)).shape == (2, 4096)


def test_siamese_vgg_equals_explicit_loops() -> None:
    torch.manual_seed(0)
    b, c, h, w, hidden, dim = 2, 3, 2, 3, 4, 5
    head = SiameseVGGHead(c, dim, hidden_dim=hidden).double()
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    w1, b1 = head.mlp[0].weight.tolist(), head.mlp[0].bias.tolist()
    w2, b2 = head.mlp[2].weight.tolist(), head.mlp[2].bias.tolist()
    xs = x.tolist()
    expected = []
    for bi in range(b):
        pooled = [sum(xs[bi][ci][hi][wi] for hi in range(h) for wi in range(w)) / (h * w) for ci in range(c)]
        act = [max(0.0, sum(w1[k][ci] * pooled[ci] for ci in range(c)) + b1[k]) for k in range(hidden)]
        expected.append([sum(w2[o][k] * act[k] for k in range(hidden)) + b2[o] for o in range(dim)])
    assert torch.allclose(head(x), torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_siamese_vgg_rejects_bad_options_and_inputs() -> None:
    with pytest.raises(SpecError, match="hidden_dim"):
        build_siamese_vgg(512, (7, 7), 128, hidden_dim=0)
    with pytest.raises(SpecError, match="dim"):
        build_siamese_vgg(512, (7, 7), 0)
    head = build_siamese_vgg(8, (2, 2), 4)
    with pytest.raises(ValueError, match=r"\(B, 8, H, W\)"):
        head(torch.randn(2, 7, 2, 2))


# --- safa ------------------------------------------------------------------


def randomise(head: SAFAHead, seed: int) -> None:
    """Non-degenerate weights: SAFA's own init makes every weighting nearly constant."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))


def test_safa_vgg16_default_gives_4096_dims() -> None:
    head = build_safa(512, (2, 4), 4096)
    assert head.num_embeddings == 8
    assert head(torch.randn(2, 512, 2, 4)).shape == (2, 4096)


@pytest.mark.parametrize("hw, d", [((3, 5), 4), ((4, 6), 8), ((1, 2), 1)])
def test_safa_parameter_count_matches_formula(hw: tuple[int, int], d: int) -> None:
    c = 16
    head = build_safa(c, hw, c * d)
    positions = hw[0] * hw[1]
    half = positions // 2
    assert n_params(head) == d * (positions * half + half + half * positions + positions)


def test_safa_equals_explicit_loops() -> None:
    b, c, h, w, d = 2, 3, 2, 3, 2
    head = SAFAHead(c, (h, w), num_embeddings=d).double()
    randomise(head, seed=1)
    x = torch.randn(b, c, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    hw, half = h * w, (h * w) // 2
    fmp = x.reshape(b, c, hw).tolist()
    w1, b1 = head.weight1.tolist(), head.bias1.tolist()
    w2, b2 = head.weight2.tolist(), head.bias2.tolist()
    expected = []
    for bi in range(b):
        pooled = [max(fmp[bi][ci][i] for ci in range(c)) for i in range(hw)]
        row = []
        for di in range(d):
            hidden = [sum(pooled[i] * w1[i][j][di] for i in range(hw)) + b1[j][di] for j in range(half)]
            weights = [sum(hidden[j] * w2[j][i][di] for j in range(half)) + b2[i][di] for i in range(hw)]
            row += [sum(fmp[bi][ci][i] * weights[i] for i in range(hw)) for ci in range(c)]
        expected.append(row)
    assert torch.allclose(head(x), torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-10)


class AppendixSPE(nn.Module):
    """The thesis' appendix 6.1 module, one spatial embedding (fc1, fc2, einsum)."""

    def __init__(self, fmp_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = fmp_size
        self.fc1 = nn.Linear(h * w, h * w // 2, bias=True)
        self.fc2 = nn.Linear(h * w // 2, h * w, bias=True)

    def forward(self, fmp: torch.Tensor) -> torch.Tensor:
        b, c, h, w = fmp.shape
        pooled, _ = fmp.max(dim=-3)
        x = self.fc2(self.fc1(pooled.flatten(start_dim=-2))).reshape(b, -1, h * w)
        return torch.einsum("bci,bdi->bdc", fmp.flatten(start_dim=-2), x).flatten(start_dim=-2)


def test_safa_with_one_embedding_matches_the_appendix_module() -> None:
    torch.manual_seed(3)
    c, hw = 8, (3, 4)
    reference = AppendixSPE(hw)
    head = build_safa(c, hw, c)
    with torch.no_grad():
        head.weight1.copy_(reference.fc1.weight.T.unsqueeze(-1))
        head.bias1.copy_(reference.fc1.bias.unsqueeze(-1))
        head.weight2.copy_(reference.fc2.weight.T.unsqueeze(-1))
        head.bias2.copy_(reference.fc2.bias.unsqueeze(-1))
    x = torch.randn(2, c, *hw)
    assert torch.allclose(head(x), reference(x), atol=1e-5)


def test_safa_output_is_d_major() -> None:
    c, d = 4, 3
    head = build_safa(c, (2, 2), c * d)
    with torch.no_grad():
        head.weight1.zero_()
        head.bias1.zero_()
        head.weight2.zero_()
        # Weighting d is the constant d + 1, so z[d, c] = (d + 1) * sum_i F[c, i].
        head.bias2.copy_(torch.arange(1.0, d + 1).expand(4, d))
    x = torch.randn(1, c, 2, 2)
    per_channel = x.flatten(2).sum(-1)[0]
    expected = torch.cat([(k + 1) * per_channel for k in range(d)])
    assert torch.allclose(head(x)[0], expected, atol=1e-5)


def test_safa_default_init_follows_the_safa_code() -> None:
    torch.manual_seed(4)
    head = build_safa(8, (8, 8), 64)
    for weight in (head.weight1, head.weight2):
        assert weight.abs().max() <= 0.01
        # A normal cut at 2 std keeps about 0.88 of its std.
        assert 0.8 * 0.005 < weight.std().item() < 0.95 * 0.005
    for bias in (head.bias1, head.bias2):
        assert torch.all(bias == 0.1)


def test_safa_pytorch_init_follows_nn_linear() -> None:
    torch.manual_seed(5)
    head = build_safa(8, (8, 8), 8, init="pytorch")
    assert head.weight1.abs().max() <= 1 / math.sqrt(64)
    assert head.bias1.abs().max() <= 1 / math.sqrt(64)
    assert head.weight2.abs().max() <= 1 / math.sqrt(32)
    assert head.weight2.abs().max() > 0.9 / math.sqrt(32)
    assert head.bias2.abs().max() <= 1 / math.sqrt(32)


@pytest.mark.parametrize("dim", [1000, 256, 0, 4096.0])
def test_safa_rejects_a_dim_that_is_not_a_multiple_of_channels(dim: object) -> None:
    with pytest.raises(SpecError) as error:
        build_safa(512, (7, 14), dim)
    message = str(error.value)
    assert f"dim={dim!r}" in message and "C=512" in message and "4096 (D=8)" in message


def test_safa_rejects_fewer_than_two_positions() -> None:
    with pytest.raises(SpecError, match=r"H\*W >= 2"):
        build_safa(512, (1, 1), 4096)


def test_safa_rejects_bad_options_and_inputs() -> None:
    with pytest.raises(SpecError, match="init must be one of safa, pytorch"):
        build_safa(8, (2, 2), 8, init="xavier")
    with pytest.raises(SpecError, match="feature_hw"):
        build_safa(8, (2,), 8)
    head = build_safa(8, (2, 3), 16)
    with pytest.raises(ValueError, match=r"\(B, 8, 2, 3\)"):
        head(torch.randn(1, 8, 3, 2))


def test_safa_gradients_reach_every_parameter() -> None:
    head = build_safa(4, (2, 3), 8)
    x = torch.randn(2, 4, 2, 3, requires_grad=True)
    head(x).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for p in head.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
