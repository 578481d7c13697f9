"""The pre-training plugins mocov2, byol and simsiam, their losses and heads, checked against hand computations."""

from __future__ import annotations

import math
import socket

import numpy as np
import pluggy
import pytest
import timm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

import cvbench
from cvbench.contract import hookspecs
from cvbench.errors import SpecError
from cvbench_plugins.pretrainers import byol, mocov2, simsiam
from cvbench_plugins.pretrainers.byol import BYOL, byol_augmentation
from cvbench_plugins.pretrainers.cosine_losses import negative_cosine, normalized_mse
from cvbench.nn import infonce
from cvbench_plugins.pretrainers.mocov2 import MoCoV2
from cvbench_plugins.pretrainers.projection import mocov2_projector, simsiam_projector
from cvbench_plugins.pretrainers.simsiam import SimSiam

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]

# Small widths so every method runs in milliseconds on a CPU. MoCoV2's batches of 4 cannot split into
# bn_splits=8 BatchNorm sub-batches, and the hand computations below normalise over the whole batch:
# bn_splits=1 (split BatchNorm is tested in tests/test_split_batchnorm.py).
SMALL = {
    MoCoV2: dict(queue_size=10, proj_hidden=16, proj_dim=4, bn_splits=1),
    BYOL: dict(proj_hidden=16, proj_dim=4, pred_hidden=16),
    SimSiam: dict(proj_hidden=16, proj_dim=4, pred_hidden=2),
}


def tiny_backbone(channels: int = 8) -> nn.Module:
    """Images (B, 3, H, W) -> feature maps (B, channels, H/2, W/2)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, channels, 3, stride=2, padding=1)
    )


def views(batch: int = 4, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 3, size, size), torch.randn(batch, 3, size, size)


def ids(*modules: nn.Module) -> set[int]:
    return {id(p) for module in modules for p in module.parameters()}


def trainable_ids(model: nn.Module) -> set[int]:
    return {id(p) for p in model.parameters() if p.requires_grad}


def numpy_infonce(query: np.ndarray, positive: np.ndarray, negatives: np.ndarray, temperature: float) -> float:
    """Eq 3.1 written out: -l_pos / t + logsumexp over [l_pos, l_neg] / t, averaged."""
    positive_logits = np.sum(query * positive, axis=1, keepdims=True)
    logits = np.concatenate([positive_logits, query @ negatives.T], axis=1) / temperature
    top = logits.max(axis=1, keepdims=True)
    logsumexp = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(logsumexp - logits[:, 0]))


def numpy_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def registered(module: object, hook: str) -> dict[str, object]:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(module)
    names: dict[str, object] = {}
    getattr(manager.hook, hook)(register=lambda name, factory, summary="": names.__setitem__(name, factory))
    return names


def test_each_module_registers_its_pretrainer() -> None:
    assert registered(mocov2, "register_pretrainers") == {"mocov2": MoCoV2}
    assert registered(byol, "register_pretrainers") == {"byol": BYOL}
    assert registered(simsiam, "register_pretrainers") == {"simsiam": SimSiam}


def test_the_installed_entry_points_build_the_methods() -> None:
    backbone = tiny_backbone()
    model = cvbench.create("pretrainer", "mocov2", backbone, 8, queue_size=12)
    assert isinstance(model, MoCoV2) and model.backbone is backbone and model.queue.size == 12
    assert isinstance(cvbench.create("pretrainer", "byol", tiny_backbone(), 8), BYOL)
    assert isinstance(cvbench.create("pretrainer", "simsiam", tiny_backbone(), 8), SimSiam)


# --- losses -----------------------------------------------------------------------------------


def test_infonce_by_hand() -> None:
    # one query, its positive along it, one orthogonal negative, tau = 1: -log(e / (e + 1)) = log(1 + 1/e)
    loss = infonce(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), 1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)))


def test_infonce_matches_explicit_logsumexp_on_a_tiny_queue() -> None:
    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    query, positive, negatives = (unit(rng.normal(size=(n, 5))) for n in (3, 3, 4))
    loss = infonce(*(torch.tensor(a, dtype=torch.float32) for a in (query, positive, negatives)), temperature=0.2)
    assert loss.item() == pytest.approx(numpy_infonce(query, positive, negatives, 0.2), rel=1e-6)


def test_infonce_sends_gradient_to_the_queries_only() -> None:
    query, positive, negatives = (torch.randn(2, 3, requires_grad=True) for _ in range(3))
    infonce(query, positive, negatives, 0.5).backward()
    assert query.grad is not None and positive.grad is None and negatives.grad is None


def test_normalized_mse_is_two_minus_two_cosine() -> None:
    prediction = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    target = torch.tensor([[0.0, 2.0], [2.0, 2.0], [-3.0, 0.0]])  # cosines 0, 1, -1 -> losses 2, 0, 4
    assert normalized_mse(prediction, target).item() == pytest.approx(2.0)
    assert normalized_mse(prediction[2:], target[2:]).item() == pytest.approx(4.0)


def test_negative_cosine_is_simsiams_d() -> None:
    prediction = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    target = torch.tensor([[0.0, 2.0], [2.0, 2.0], [-3.0, 0.0]])  # cosines 0, 1, -1
    assert negative_cosine(prediction, target).item() == pytest.approx(0.0, abs=1e-6)
    assert negative_cosine(prediction[1:2], target[1:2]).item() == pytest.approx(-1.0)


@pytest.mark.parametrize("loss", [normalized_mse, negative_cosine])
def test_cosine_losses_stop_the_gradient_at_the_target(loss) -> None:
    prediction, target = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    loss(prediction, target).backward()
    assert prediction.grad is not None and target.grad is None


@pytest.mark.parametrize("loss", [infonce, normalized_mse, negative_cosine])
def test_losses_compute_in_float32_under_bf16_autocast(loss) -> None:
    torch.manual_seed(0)
    tensors = [F.normalize(torch.randn(4, 8), dim=1) for _ in range(3 if loss is infonce else 2)]
    options = {"temperature": 0.2} if loss is infonce else {}
    exact = loss(*tensors, **options)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(*(t.bfloat16() for t in tensors[:1]), *tensors[1:], **options)
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(exact.item(), abs=0.02)  # only the bf16 rounding of the first input


# --- heads ------------------------------------------------------------------------------------


def test_mocov2_projector_is_the_thesis_head() -> None:
    head = mocov2_projector(512)
    assert isinstance(head.avgpool, nn.AdaptiveAvgPool2d)
    layers = list(head.classifier)
    assert [type(layer) for layer in layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (512, 512, 128)
    assert head(torch.randn(2, 512, 3, 5)).shape == (2, 128)


def test_simsiam_projector_has_bn_after_every_layer() -> None:
    head = simsiam_projector(8, hidden_dim=16, out_dim=6)
    norms = [m for m in head.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 3 and not norms[-1].affine
    assert head(torch.randn(4, 8, 2, 2)).shape == (4, 6)


# --- mocov2 -----------------------------------------------------------------------------------


def test_mocov2_defaults_are_section_4_2() -> None:
    model = MoCoV2(tiny_backbone(), 8)
    assert model.queue.keys.shape == (16384, 128)
    assert (model.momentum, model.temperature) == (0.999, 0.2)
    assert model.projector.classifier[0].out_features == 512
    assert model.bn_splits == 8  # the MoCo authors' single-GPU demo


def test_mocov2_step_trains_queries_and_moves_keys_by_eq_3_2() -> None:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    model = MoCoV2(backbone, 8, momentum=0.9, temperature=0.2, **SMALL[MoCoV2])
    assert model.backbone is backbone
    query_params = [*backbone.parameters(), *model.projector.parameters()]
    key_params = [*model.key_backbone.parameters(), *model.key_projector.parameters()]
    assert trainable_ids(model) == {id(p) for p in query_params}

    view1, view2 = views()
    queue_before = model.queue.keys.clone()
    with torch.no_grad():
        query = F.normalize(model.projector(backbone(view1)), dim=1)
        key = F.normalize(model.key_projector(model.key_backbone(view2)), dim=1)
    loss = model(view1, view2)
    assert loss.item() == pytest.approx(numpy_infonce(query.numpy(), key.numpy(), queue_before.numpy(), 0.2), rel=1e-5)

    optimizer = torch.optim.SGD(query_params, lr=0.5)
    loss.backward()
    assert all(p.grad is None for p in key_params) and backbone[0].weight.grad is not None
    key_before = [p.clone() for p in key_params]
    query_before = [p.clone() for p in query_params]
    optimizer.step()
    assert all(torch.equal(p, old) for p, old in zip(key_params, key_before))  # no gradient step on keys
    assert not all(torch.equal(p, old) for p, old in zip(query_params, query_before))
    model.after_step()
    for p, old, online in zip(key_params, key_before, query_params):
        assert torch.allclose(p, 0.9 * old + 0.1 * online)
    assert torch.allclose(model.queue.keys[:4], key) and torch.equal(model.queue.keys[4:], queue_before[4:])
    assert int(model.queue.ptr) == 4


def test_mocov2_queue_wraps_when_its_size_is_not_a_multiple_of_the_batch() -> None:
    torch.manual_seed(0)
    model = MoCoV2(tiny_backbone(), 8, **SMALL[MoCoV2])  # queue 10, batches of 4
    keys = []
    for _ in range(3):
        view1, view2 = views()
        with torch.no_grad():
            keys.append(F.normalize(model.key_projector(model.key_backbone(view2)), dim=1))
        model(view1, view2).backward()
        model.after_step()
    first, second, third = keys
    expected = torch.cat([third[2:], first[2:], second, third[:2]])  # rows 0-1, 2-3, 4-7, 8-9
    assert torch.allclose(model.queue.keys, expected) and int(model.queue.ptr) == 2


def test_mocov2_enqueues_nothing_in_eval_mode() -> None:
    model = MoCoV2(tiny_backbone(), 8, **SMALL[MoCoV2]).eval()
    before = model.queue.keys.clone()
    with torch.no_grad():
        model(*views())
    model.after_step()
    assert torch.equal(model.queue.keys, before) and int(model.queue.ptr) == 0


def test_mocov2_state_dict_carries_queue_and_key_encoder() -> None:
    torch.manual_seed(0)
    model = MoCoV2(tiny_backbone(), 8, momentum=0.5, **SMALL[MoCoV2])
    model(*views()).backward()
    model.after_step()
    state = model.state_dict()
    assert {"queue.keys", "queue.ptr", "key_backbone.0.weight", "key_projector.classifier.0.weight"} <= set(state)
    resumed = MoCoV2(tiny_backbone(), 8, momentum=0.5, **SMALL[MoCoV2])
    resumed.load_state_dict(state)
    assert torch.equal(resumed.queue.keys, model.queue.keys) and int(resumed.queue.ptr) == 4
    assert torch.equal(resumed.key_backbone[0].weight, model.key_backbone[0].weight)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mocov2_in_a_process_group_of_one_is_the_single_process_path() -> None:
    """A group of one rank has nobody to shuffle BatchNorm across, so split BatchNorm still applies: the loss and
    the queue equal those of the same step without a group (the collectives are then the identity)."""
    def one_step(bn_splits: int) -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        model = MoCoV2(tiny_backbone(), 8, **{**SMALL[MoCoV2], "bn_splits": bn_splits})
        loss = model(*views())
        loss.backward()
        model.after_step()
        return loss.item(), model.queue.keys.clone()

    plain_loss, plain_queue = one_step(bn_splits=2)
    unsplit_loss, _ = one_step(bn_splits=1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        group_loss, group_queue = one_step(bn_splits=2)
    finally:
        dist.destroy_process_group()
    assert group_loss == pytest.approx(plain_loss, rel=1e-6)
    assert torch.allclose(group_queue, plain_queue, atol=1e-6)
    assert unsplit_loss != pytest.approx(plain_loss, rel=1e-4)  # the split really changed the step


# --- byol -------------------------------------------------------------------------------------


def test_byol_loss_is_symmetrised_eq_2_2() -> None:
    torch.manual_seed(0)
    model = BYOL(tiny_backbone(), 8, **SMALL[BYOL])
    view1, view2 = views()
    with torch.no_grad():
        p1, p2 = (model.predictor(model.projector(model.backbone(v))) for v in (view1, view2))
        z1, z2 = (model.target_projector(model.target_backbone(v)) for v in (view1, view2))
    expected = sum(np.mean(2 - 2 * numpy_cosine(p.numpy(), z.numpy())) for p, z in ((p1, z2), (p2, z1)))
    assert model(view1, view2).item() == pytest.approx(expected, rel=1e-5)


def test_byol_step_trains_online_network_only() -> None:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    model = BYOL(backbone, 8, **SMALL[BYOL])
    assert model.backbone is backbone
    assert trainable_ids(model) == ids(backbone, model.projector, model.predictor)
    target_params = [*model.target_backbone.parameters(), *model.target_projector.parameters()]
    assert not any(p.requires_grad for p in target_params)
    model(*views()).backward()
    assert all(p.grad is None for p in target_params) and backbone[0].weight.grad is not None


def test_byol_target_follows_the_cosine_schedule() -> None:
    torch.manual_seed(0)
    model = BYOL(tiny_backbone(), 8, momentum=0.5, total_steps=4, **SMALL[BYOL])
    with torch.no_grad():
        for p in [*model.backbone.parameters(), *model.projector.parameters()]:
            p.add_(1.0)  # online != target, so every update is visible
    online = [*model.backbone.parameters(), *model.projector.parameters()]
    target = [*model.target_backbone.parameters(), *model.target_projector.parameters()]
    # tau_k = 1 - 0.5 (cos(pi k / 4) + 1) / 2 for k = 0..4, then 1
    rates = [0.5, 1 - 0.25 * (math.sqrt(0.5) + 1), 0.75, 1 - 0.25 * (1 - math.sqrt(0.5)), 1.0, 1.0]
    for k, rate in enumerate(rates):
        assert int(model.step) == k and model.current_momentum() == pytest.approx(rate)
        before = [p.clone() for p in target]
        model.after_step()
        for p, old, new in zip(target, before, online):
            assert torch.allclose(p, rate * old + (1 - rate) * new)


def test_byol_schedule_continues_from_a_loaded_state() -> None:
    model = BYOL(tiny_backbone(), 8, momentum=0.5, total_steps=4, **SMALL[BYOL])
    for _ in range(2):
        model.current_momentum()
        model.after_step()
    again = BYOL(tiny_backbone(), 8, momentum=0.5, total_steps=4, **SMALL[BYOL])
    assert again.current_momentum() == 0.5  # k = 0 before loading
    again.load_state_dict(model.state_dict())
    assert int(again.step) == 2 and again.current_momentum() == pytest.approx(0.75)


def test_byol_without_total_steps_keeps_the_base_rate() -> None:
    model = BYOL(tiny_backbone(), 8, **SMALL[BYOL])
    for _ in range(3):
        model.after_step()
    assert model.current_momentum() == 0.996 and int(model.step) == 3
    assert "step" in model.state_dict()


def step_of(transform: v2.Compose, kind: type) -> nn.Module:
    return next(step for step in transform.transforms if isinstance(step, kind))


def randomly_applied(transform: v2.Compose, kind: type) -> v2.RandomApply:
    """The ``RandomApply`` step wrapping a transform of type ``kind``."""
    return next(s for s in transform.transforms if isinstance(s, v2.RandomApply) and isinstance(s.transforms[0], kind))


def test_byol_augmentations_are_the_asymmetric_pair_of_table_6() -> None:
    model = BYOL(tiny_backbone(), 8, **SMALL[BYOL])
    first, second = model.augmentations((32, 32))
    assert first is not second

    assert (randomly_applied(first, v2.GaussianBlur).p, step_of(first, v2.RandomSolarize).p) == (1.0, 0.0)
    assert (randomly_applied(second, v2.GaussianBlur).p, step_of(second, v2.RandomSolarize).p) == (0.1, 0.2)
    for transform in (first, second):
        jitter = randomly_applied(transform, v2.ColorJitter)
        assert jitter.p == 0.8 and step_of(transform, v2.RandomGrayscale).p == 0.2
        assert step_of(transform, v2.RandomResizedCrop).scale == (0.08, 1.0)
        colour = jitter.transforms[0]
        assert (colour.brightness, colour.contrast, colour.saturation) == ((0.6, 1.4), (0.6, 1.4), (0.8, 1.2))
        assert colour.hue == (-0.1, 0.1)


def test_byol_blur_kernel_is_the_papers_at_224() -> None:
    transform = byol_augmentation((224, 224), blur_p=1.0, solarize_p=0.0)
    assert tuple(randomly_applied(transform, v2.GaussianBlur).transforms[0].kernel_size) == (23, 23)


# --- simsiam ----------------------------------------------------------------------------------


def test_simsiam_loss_and_step() -> None:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    model = SimSiam(backbone, 8, **SMALL[SimSiam])
    assert model.backbone is backbone
    assert trainable_ids(model) == ids(backbone, model.projector, model.predictor)
    view1, view2 = views()
    with torch.no_grad():
        z1, z2 = (model.projector(backbone(v)) for v in (view1, view2))
        p1, p2 = model.predictor(z1), model.predictor(z2)
    expected = sum(-0.5 * np.mean(numpy_cosine(p.numpy(), z.numpy())) for p, z in ((p1, z2), (p2, z1)))
    loss = model(view1, view2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    model.after_step()
    assert all(torch.equal(p, before[name]) for name, p in model.state_dict().items())


def test_simsiam_defaults_are_the_papers() -> None:
    model = SimSiam(tiny_backbone(), 8)
    linears = [m for m in model.projector.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [2048, 2048, 2048]
    assert model.predictor[0].out_features == 512 and model.predictor[3].out_features == 2048


# --- shared contract --------------------------------------------------------------------------


@pytest.mark.parametrize("method", [MoCoV2, BYOL, SimSiam])
def test_augmentations_map_uint8_to_unit_floats_of_the_same_size(method: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = method(tiny_backbone(), 8, **SMALL[method])
    image = torch.randint(0, 256, (3, 24, 40), dtype=torch.uint8)
    for transform in model.augmentations((24, 40)):
        out = transform(image)
        assert out.shape == (3, 24, 40) and out.dtype == torch.float32
        assert 0.0 <= out.min().item() and out.max().item() <= 1.0


@pytest.mark.parametrize(
    "method, options, culprit",
    [
        (MoCoV2, {"queue_size": 0}, "queue_size"),
        (MoCoV2, {"momentum": 1.0}, "momentum"),
        (MoCoV2, {"temperature": 0.0}, "temperature"),
        (MoCoV2, {"proj_dim": 2.5}, "proj_dim"),
        (MoCoV2, {"bn_splits": 0}, "bn_splits"),
        (MoCoV2, {"bn_splits": True}, "bn_splits"),
        (BYOL, {"momentum": 1.5}, "momentum"),
        (BYOL, {"total_steps": -1}, "total_steps"),
        (SimSiam, {"pred_hidden": "512"}, "pred_hidden"),
    ],
)
def test_bad_options_raise_spec_error_naming_the_option(method: type[nn.Module], options: dict, culprit: str) -> None:
    with pytest.raises(SpecError, match=culprit):
        method(tiny_backbone(), 8, **options)


@pytest.mark.parametrize("method", [MoCoV2, BYOL, SimSiam])
def test_methods_train_a_timm_resnet(method: type[nn.Module]) -> None:
    torch.manual_seed(0)
    backbone = timm.create_model("resnet10t", pretrained=False, num_classes=0, global_pool="")
    model = method(backbone, backbone.num_features, **SMALL[method])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    loss = model(*views(size=32))
    loss.backward()
    optimizer.step()
    model.after_step()
    assert torch.isfinite(loss) and model.backbone is backbone


# --- no collapse ------------------------------------------------------------------------------


def coloured_shapes(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 (count, 3, size, size): a plain background with one to three discs or rectangles of random colours."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    images = np.empty((count, 3, size, size), np.uint8)
    for i in range(count):
        image = np.broadcast_to(rng.integers(0, 256, 3)[:, None, None], (3, size, size)).copy()
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(4, size - 4, 2)
            radius = rng.integers(3, 10)
            if rng.random() < 0.5:
                mask = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
            else:
                mask = (abs(rows - cy) < radius) & (abs(cols - cx) < 0.6 * radius)
            image[:, mask] = rng.integers(0, 256, 3)[:, None]
        images[i] = image
    return torch.from_numpy(images)


def spread(z: torch.Tensor) -> float:
    """Mean per-dimension std of L2-normalised outputs (N, d), times sqrt(d).

    Chen & He 2021, section 3: about 1 for well-spread outputs (std ~ 1/sqrt(d)), 0 for a collapse.
    """
    z = F.normalize(z, dim=1)
    return z.std(dim=0).mean().item() * math.sqrt(z.shape[1])


def test_spread_reads_one_for_isotropic_and_zero_for_constant_outputs() -> None:
    torch.manual_seed(0)
    assert spread(torch.randn(4096, 64)) == pytest.approx(1.0, abs=0.02)
    assert spread(torch.ones(4096, 64)) == pytest.approx(0.0, abs=1e-6)


def train(model: nn.Module, steps: int, stop_gradient: bool = True) -> float:
    """SGD on augmented coloured shapes; returns the :func:`spread` of the projector on held-out images."""
    images = coloured_shapes(256)
    held_out = (coloured_shapes(128, seed=1).float() / 255 - MEAN) / STD
    first, second = model.augmentations((32, 32))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.05, momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = images[torch.randint(0, len(images), (32,), generator=generator)]
        view1 = torch.stack([(first(image) - MEAN) / STD for image in batch])
        view2 = torch.stack([(second(image) - MEAN) / STD for image in batch])
        if stop_gradient:
            loss = model(view1, view2)
        else:  # ablation (Chen & He 2021, figure 2): no target network, no stop-gradient
            z1, z2 = (model.projector(model.backbone(v)) for v in (view1, view2))
            loss = sum((2 - 2 * F.cosine_similarity(model.predictor(a), b)).mean() for a, b in ((z1, z2), (z2, z1)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.after_step()
    model.eval()
    with torch.no_grad():
        outputs = model.projector(model.backbone(held_out))
    return spread(outputs)


def shapes_backbone() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
    )


def test_simsiam_does_not_collapse() -> None:
    torch.manual_seed(0)
    assert train(SimSiam(shapes_backbone(), 32, proj_hidden=64, proj_dim=64, pred_hidden=16), steps=40) > 0.5


def test_byol_does_not_collapse_but_collapses_without_its_stop_gradient() -> None:
    torch.manual_seed(0)
    healthy = train(BYOL(shapes_backbone(), 32, momentum=0.99, proj_hidden=64, proj_dim=32, pred_hidden=64), steps=40)
    torch.manual_seed(0)
    ablated = BYOL(shapes_backbone(), 32, momentum=0.99, proj_hidden=64, proj_dim=32, pred_hidden=64)
    collapsed = train(ablated, steps=30, stop_gradient=False)
    assert healthy > 0.5 and collapsed < 0.2
