"""Fine-tuning losses against their formulas written out as explicit loops over pairs and triplets."""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import pytest
import torch
from cvbench_plugins.losses import infonce, soft_triplet, uniformity
from cvbench_plugins.losses.infonce import InfoNCELoss
from cvbench_plugins.losses.soft_triplet import SoftMarginTripletLoss
from cvbench_plugins.losses.uniformity import UniformityLoss
from torch.nn import functional as F

from cvbench.contract.registry import Registry
from cvbench.errors import SpecError


def unit_pairs(n: int = 4, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z_ground = F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1)
    z_aerial = F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1)
    return z_ground, z_aerial


def euclidean(x: list[float], y: list[float]) -> float:
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)))


def squared(x: list[float], y: list[float]) -> float:
    return sum((a - b) ** 2 for a, b in zip(x, y))


def dot(x: list[float], y: list[float]) -> float:
    return sum(a * b for a, b in zip(x, y))


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    for module in (soft_triplet, uniformity, infonce):
        registry.add(module, source="cvbench", name=f"cvbench:{module.__name__}")
    return registry


def test_entry_points_name_these_modules() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="cvbench")}
    for name in ("soft_triplet", "uniformity", "infonce"):
        assert found[name] == f"cvbench_plugins.losses.{name}"


def test_losses_register_with_a_summary(registry: Registry) -> None:
    expected = {"soft_triplet": SoftMarginTripletLoss, "uniformity": UniformityLoss, "infonce": InfoNCELoss}
    for name, cls in expected.items():
        plugin = registry.get("loss", name)
        assert plugin.factory is cls and plugin.summary
        assert isinstance(registry.create("loss", name), cls)


@pytest.mark.parametrize(
    "name, option, accepted",
    [("soft_triplet", "margin", "gamma"), ("uniformity", "alpha", "reduction"), ("infonce", "tau", "label_smoothing")],
)
def test_unknown_options_are_spec_errors(registry: Registry, name: str, option: str, accepted: str) -> None:
    with pytest.raises(SpecError, match=f"no option '{option}'.*{accepted}"):
        registry.create("loss", name, **{option: 1.0})


@pytest.mark.parametrize("loss_fn", [SoftMarginTripletLoss(), UniformityLoss(), InfoNCELoss()])
def test_mismatched_shapes_are_value_errors(loss_fn: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(torch.randn(4, 8), torch.randn(4, 7))
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(torch.randn(4, 8), torch.randn(3, 8))
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(torch.randn(4, 8, 1), torch.randn(4, 8, 1))


@pytest.mark.parametrize(
    "cls, options",
    [(SoftMarginTripletLoss, {}), (SoftMarginTripletLoss, {"distance": "sqeuclidean"}), (UniformityLoss, {}),
     (InfoNCELoss, {})],
)
def test_losses_compute_in_float32_under_autocast(cls: type, options: dict) -> None:
    loss_fn = cls(**options)
    z_ground, z_aerial = unit_pairs(n=16, d=64, seed=12)
    z_aerial = F.normalize(z_ground + 0.01 * z_aerial, dim=1)  # close positives are the sensitive case
    reference = loss_fn.double()(z_ground, z_aerial)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss_fn.float()(z_ground.float(), z_aerial.float())
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(reference.item(), rel=1e-5)


# --- soft_triplet ------------------------------------------------------------


def triplet_by_hand(z_ground: torch.Tensor, z_aerial: torch.Tensor, gamma: float, distance) -> float:
    """Eq 3.4 summed over i != j, with eq 3.3's gamma inside the exponent as in CVM-Net."""
    g, a = z_ground.tolist(), z_aerial.tolist()
    total = 0.0
    for i in range(len(g)):
        for j in range(len(g)):
            if i == j:
                continue
            total += math.log(1 + math.exp(gamma * (distance(g[i], a[i]) - distance(g[i], a[j]))))
            total += math.log(1 + math.exp(gamma * (distance(a[i], g[i]) - distance(a[i], g[j]))))
    return total


def test_soft_triplet_defaults() -> None:
    loss_fn = SoftMarginTripletLoss()
    assert (loss_fn.gamma, loss_fn.distance, loss_fn.reduction) == (10.0, "euclidean", "mean")


@pytest.mark.parametrize("gamma", [10.0, 1.0, 3.5])
def test_soft_triplet_equals_explicit_triplet_loop(gamma: float) -> None:
    z_ground, z_aerial = unit_pairs()
    n = len(z_ground)
    expected_sum = triplet_by_hand(z_ground, z_aerial, gamma, euclidean)
    got_sum = SoftMarginTripletLoss(gamma=gamma, reduction="sum")(z_ground, z_aerial).item()
    got_mean = SoftMarginTripletLoss(gamma=gamma)(z_ground, z_aerial).item()
    assert got_sum == pytest.approx(expected_sum, rel=1e-10)
    assert got_mean == pytest.approx(expected_sum / (2 * n * (n - 1)), rel=1e-10)


def test_soft_triplet_sum_is_mean_times_number_of_triplets() -> None:
    for n in (2, 3, 6):
        z_ground, z_aerial = unit_pairs(n=n, seed=n)
        total = SoftMarginTripletLoss(reduction="sum")(z_ground, z_aerial)
        mean = SoftMarginTripletLoss(reduction="mean")(z_ground, z_aerial)
        assert (total / mean).item() == pytest.approx(2 * n * (n - 1), rel=1e-10)


def test_soft_triplet_sqeuclidean_is_two_minus_two_cosine() -> None:
    z_ground, z_aerial = unit_pairs(seed=1)
    g, a = z_ground.tolist(), z_aerial.tolist()
    n, gamma = len(g), 10.0
    expected = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                expected += math.log(1 + math.exp(gamma * ((2 - 2 * dot(g[i], a[i])) - (2 - 2 * dot(g[i], a[j])))))
                expected += math.log(1 + math.exp(gamma * ((2 - 2 * dot(a[i], g[i])) - (2 - 2 * dot(a[i], g[j])))))
    got = SoftMarginTripletLoss(distance="sqeuclidean")(z_ground, z_aerial).item()
    assert got == pytest.approx(expected / (2 * n * (n - 1)), rel=1e-10)
    assert triplet_by_hand(z_ground, z_aerial, gamma, squared) == pytest.approx(expected, rel=1e-10)


def test_soft_triplet_is_stable_for_a_huge_gamma() -> None:
    z_ground, z_aerial = unit_pairs(seed=2)
    loss = SoftMarginTripletLoss(gamma=1e4)(z_ground.float(), z_aerial.float())
    assert torch.isfinite(loss)


def test_soft_triplet_gradients_flow_even_for_coinciding_points() -> None:
    z_ground, z_aerial = unit_pairs(seed=3)
    z_aerial = torch.cat([z_ground[:1], z_aerial[1:]])  # pair 0 coincides: d_pos = 0
    z_ground.requires_grad_(True)
    z_aerial.requires_grad_(True)
    for distance in ("euclidean", "sqeuclidean"):
        z_ground.grad = z_aerial.grad = None
        SoftMarginTripletLoss(distance=distance)(z_ground, z_aerial).backward()
        for z in (z_ground, z_aerial):
            assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_soft_triplet_needs_a_negative() -> None:
    z_ground, z_aerial = unit_pairs(n=1)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        SoftMarginTripletLoss()(z_ground, z_aerial)


@pytest.mark.parametrize(
    "options, culprit",
    [({"gamma": 0}, "gamma"), ({"gamma": -1.0}, "gamma"), ({"gamma": "10"}, "gamma"), ({"gamma": math.inf}, "gamma"),
     ({"distance": "cosine"}, "distance"), ({"reduction": "none"}, "reduction")],
)
def test_soft_triplet_rejects_bad_options(options: dict, culprit: str) -> None:
    with pytest.raises(SpecError, match=f"option {culprit}"):
        SoftMarginTripletLoss(**options)


# --- uniformity --------------------------------------------------------------


def uniformity_by_hand(z: torch.Tensor, t: float, mean: bool) -> float:
    rows = z.tolist()
    n = len(rows)
    total = sum(math.exp(-t * squared(rows[i], rows[j])) for i in range(n) for j in range(n) if i != j)
    return math.log(total / (n * (n - 1)) if mean else total)


@pytest.mark.parametrize("t", [2.0, 0.5, 5.0])
def test_uniformity_equals_explicit_pair_loop(t: float) -> None:
    z_ground, z_aerial = unit_pairs(seed=4)
    for reduction, mean in (("mean", True), ("sum", False)):
        expected = uniformity_by_hand(z_ground, t, mean) + uniformity_by_hand(z_aerial, t, mean)
        got = UniformityLoss(t=t, reduction=reduction)(z_ground, z_aerial).item()
        assert got == pytest.approx(expected, rel=1e-10)


def test_uniformity_sum_and_mean_differ_by_log_of_pair_count() -> None:
    for n in (2, 5):
        z_ground, z_aerial = unit_pairs(n=n, seed=n)
        gap = UniformityLoss(reduction="sum")(z_ground, z_aerial) - UniformityLoss()(z_ground, z_aerial)
        assert gap.item() == pytest.approx(2 * math.log(n * (n - 1)), rel=1e-10)


def test_uniformity_of_antipodal_points_on_the_circle() -> None:
    t = 2.0
    z_ground = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    z_aerial = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    # ||z_0 - z_1||^2 = 4 in both views: each view gives log exp(-4t) = -4t.
    assert UniformityLoss(t=t)(z_ground, z_aerial).item() == pytest.approx(-8 * t, abs=1e-5)
    # Eq 3.9 literally: log(2 exp(-4t)) per view.
    assert UniformityLoss(t=t, reduction="sum")(z_ground, z_aerial).item() == pytest.approx(
        2 * (math.log(2) - 4 * t), abs=1e-5
    )


def test_uniformity_of_a_square_on_the_circle() -> None:
    t = 1.0
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    # Of the 12 ordered pairs, 8 are neighbours (||.||^2 = 2) and 4 are opposite (||.||^2 = 4).
    per_view = math.log((8 * math.exp(-2 * t) + 4 * math.exp(-4 * t)) / 12)
    assert UniformityLoss(t=t)(square, square).item() == pytest.approx(2 * per_view, abs=1e-5)


def test_uniformity_is_stable_for_a_large_temperature() -> None:
    z_ground, z_aerial = unit_pairs(seed=5)
    loss = UniformityLoss(t=1000.0)(z_ground.float(), z_aerial.float())
    assert torch.isfinite(loss)


def test_uniformity_gradients_flow() -> None:
    z_ground, z_aerial = unit_pairs(seed=6)
    z_ground.requires_grad_(True)
    z_aerial.requires_grad_(True)
    UniformityLoss()(z_ground, z_aerial).backward()
    for z in (z_ground, z_aerial):
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_uniformity_needs_a_pair() -> None:
    z_ground, z_aerial = unit_pairs(n=1)
    with pytest.raises(ValueError, match="at least 2"):
        UniformityLoss()(z_ground, z_aerial)


@pytest.mark.parametrize(
    "options, culprit", [({"t": 0}, "t"), ({"t": True}, "t"), ({"reduction": "max"}, "reduction")]
)
def test_uniformity_rejects_bad_options(options: dict, culprit: str) -> None:
    with pytest.raises(SpecError, match=f"option {culprit}"):
        UniformityLoss(**options)


# --- infonce -----------------------------------------------------------------


def smoothed_cross_entropy_by_hand(logits: list[list[float]], eps: float) -> float:
    """Mean over rows of (1 - eps) (-log p_ii) + eps mean_k (-log p_ik), p = softmax of the row."""
    n = len(logits)
    total = 0.0
    for i, row in enumerate(logits):
        top = max(row)
        log_norm = top + math.log(sum(math.exp(v - top) for v in row))
        nll = [log_norm - v for v in row]
        total += (1 - eps) * nll[i] + eps * sum(nll) / n
    return total / n


def infonce_by_hand(z_ground: torch.Tensor, z_aerial: torch.Tensor, scale: float, eps: float) -> float:
    g, a = z_ground.tolist(), z_aerial.tolist()
    n = len(g)
    ground_to_aerial = [[scale * dot(g[i], a[j]) for j in range(n)] for i in range(n)]
    aerial_to_ground = [[scale * dot(a[i], g[j]) for j in range(n)] for i in range(n)]
    return (smoothed_cross_entropy_by_hand(ground_to_aerial, eps) + smoothed_cross_entropy_by_hand(aerial_to_ground, eps)) / 2


@pytest.mark.parametrize("temperature, eps", [(0.07, 0.1), (0.2, 0.0), (0.5, 0.3)])
def test_infonce_with_frozen_temperature_equals_explicit_loop(temperature: float, eps: float) -> None:
    z_ground, z_aerial = unit_pairs(seed=7)
    loss_fn = InfoNCELoss(temperature=temperature, learnable_temperature=False, label_smoothing=eps).double()
    expected = infonce_by_hand(z_ground, z_aerial, 1 / temperature, eps)
    # log_scale is stored in float32, so the scale itself is only good to about 1e-7.
    assert loss_fn(z_ground, z_aerial).item() == pytest.approx(expected, rel=1e-6)
    assert list(loss_fn.parameters()) == []


def test_infonce_defaults_follow_sample4geo() -> None:
    loss_fn = InfoNCELoss()
    assert loss_fn.temperature == pytest.approx(0.07)
    assert loss_fn.label_smoothing == 0.1
    assert loss_fn.max_log_scale == pytest.approx(math.log(100))
    z_ground, z_aerial = unit_pairs(seed=8)
    expected = infonce_by_hand(z_ground, z_aerial, 1 / 0.07, 0.1)
    assert loss_fn.double()(z_ground, z_aerial).item() == pytest.approx(expected, rel=1e-6)


def test_infonce_temperature_is_a_learnable_log_scale() -> None:
    loss_fn = InfoNCELoss()
    assert [name for name, _ in loss_fn.named_parameters()] == ["log_scale"]
    assert loss_fn.log_scale.item() == pytest.approx(math.log(1 / 0.07))
    z_ground, z_aerial = unit_pairs(seed=9)
    z_ground = z_ground.float().requires_grad_(True)
    loss_fn(z_ground, z_aerial.float()).backward()
    assert loss_fn.log_scale.grad is not None and loss_fn.log_scale.grad.abs() > 0
    assert z_ground.grad is not None and z_ground.grad.abs().sum() > 0


def test_infonce_scale_is_clamped_to_max_scale() -> None:
    loss_fn = InfoNCELoss(label_smoothing=0.0).double()
    with torch.no_grad():
        loss_fn.log_scale.fill_(math.log(1000.0))
    z_ground, z_aerial = unit_pairs(seed=10)
    got = loss_fn(z_ground, z_aerial).item()
    assert got == pytest.approx(infonce_by_hand(z_ground, z_aerial, 100.0, 0.0), rel=1e-10)
    assert loss_fn.temperature == pytest.approx(0.01)
    loss_fn.after_step()
    assert loss_fn.log_scale.item() == pytest.approx(math.log(100.0))


def test_infonce_scale_at_the_bound_still_gets_a_gradient() -> None:
    loss_fn = InfoNCELoss(temperature=0.01)
    assert loss_fn.log_scale.item() == pytest.approx(math.log(100.0))
    z_ground, z_aerial = unit_pairs(seed=13)
    loss_fn(z_ground.float(), z_aerial.float()).backward()
    assert loss_fn.log_scale.grad is not None and loss_fn.log_scale.grad.item() != 0


@pytest.mark.parametrize(
    "options, culprit",
    [({"temperature": 0}, "temperature"), ({"temperature": 0.001}, "temperature"),
     ({"max_scale": -1.0}, "max_scale"), ({"label_smoothing": 1.0}, "label_smoothing"),
     ({"label_smoothing": -0.1}, "label_smoothing"), ({"learnable_temperature": "yes"}, "learnable_temperature")],
)
def test_infonce_rejects_bad_options(options: dict, culprit: str) -> None:
    with pytest.raises(SpecError, match=f"option {culprit}"):
        InfoNCELoss(**options)
