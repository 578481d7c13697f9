"""Conformance checks a plugin author calls from their own tests: ``check_head(MyHead)`` and friends.

Each check builds the plugin the way cvbench does (through a registry, so the
option check, the abstract-method check and :func:`cvbench.contract.conform`
all apply), feeds it toy inputs of the documented shapes and verifies what the
engine relies on: the output's shape and finiteness, determinism (the same
seed gives the same output) and, for plugins with state, that a
``state_dict`` saved and loaded into a fresh copy gives the same output
(``--resume`` restores plugins this way). A failed check raises
:class:`ConformanceError` naming the plugin, the check and what was expected::

    from cvbench import testing

    def test_my_head_conforms():
        testing.check_head(MyHead, dim=32)

A factory is checked as given; a string is a registered name (the installed
plugin). Inputs are random with a fixed seed, at toy size, so a check takes
well under a second for a small plugin.
"""

from __future__ import annotations

import copy
import functools
import io
import types
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .contract import Batching
from .contract.hookspecs import hookimpl
from .contract.registry import KINDS, Registry, get_registry
from .data import CrossViewPairs
from .data.sampling import EpochBatches
from .errors import CvbenchError, PluginError
from .nn.model import Branch, TwoBranchNet, check_finite, check_shape

Factory = Callable[..., Any] | str


class ConformanceError(PluginError, AssertionError):
    """A plugin broke its kind's contract; the message names the plugin, the check and what was expected."""


def _keeps_rng(check: Callable[..., None]) -> Callable[..., None]:
    """Run ``check`` on a copy of torch's CPU random state: the checks seed torch, the caller's test keeps its own."""

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> None:
        with torch.random.fork_rng(devices=[]):
            check(*args, **kwargs)

    return run


@_keeps_rng
def check_head(factory: Factory, *, in_channels: int = 16, feature_hw: tuple[int, int] = (4, 8), dim: int = 32,
               batch: int = 4, **options: Any) -> None:
    """A head builds, maps ``(B, in_channels, *feature_hw)`` to finite ``(B, dim)``, deterministically, and resumes."""
    name, build = _builder("head", factory, (in_channels, tuple(feature_hw), dim), options)
    features = _random(batch, in_channels, *feature_hw)
    built = build()
    out = _run(name, "output shape", lambda: built.eval()(features))
    try:
        check_shape(out, batch, dim, _plugin_name(factory), "toy")
        check_finite(out, features, _plugin_name(factory), "toy")
    except PluginError as exc:
        raise ConformanceError(f"{exc} (cvbench.testing output shape)") from None
    again = _run(name, "determinism (same seed, same output)", lambda: build().eval()(features))
    _same(name, "determinism (same seed, same output)", out, again)
    reloaded = _reloaded(name, built, build)
    again = _run(name, "state round-trip (state_dict saved and loaded)", lambda: reloaded.eval()(features))
    _same(name, "state round-trip (state_dict saved and loaded)", out, again)


@_keeps_rng
def check_loss(factory: Factory, *, dim: int = 8, batch: int = 6, **options: Any) -> None:
    """A loss builds, maps two ``(B, dim)`` unit batches to a finite scalar with a gradient, deterministically."""
    name, build = _builder("loss", factory, (), options)
    z_ground, z_aerial = (nn.functional.normalize(_random(batch, dim, seed=seed), dim=1) for seed in (1, 2))
    images = (_random(batch, 3, 16, 16, seed=3), _random(batch, 3, 16, 16, seed=4))

    def value(loss: nn.Module, grad: bool = False) -> torch.Tensor:
        model = _toy_model(dim)
        loss.attach(model)
        ground, aerial = (z.clone().requires_grad_(grad) for z in (z_ground, z_aerial))
        torch.manual_seed(0)
        out = loss(ground, aerial, *images) if loss.needs_images else loss(ground, aerial)
        _expect(name, "output shape", isinstance(out, torch.Tensor) and out.shape == () and bool(torch.isfinite(out)),
                f"a finite scalar, got {_describe(out)}")
        if grad:
            _expect(name, "gradient", out.requires_grad,
                    "a loss that is differentiable in z_ground and z_aerial (it returned a detached value)")
            out.backward()
            _expect(name, "gradient", all(z.grad is not None and bool(torch.isfinite(z.grad).all())
                                          for z in (ground, aerial)), "finite gradients for both embeddings")
        return out.detach()

    built = build()
    out = _run(name, "output shape", lambda: value(built, grad=True))
    _same(name, "determinism (same seed, same output)", out,
          _run(name, "determinism (same seed, same output)", lambda: value(build())))
    reloaded = _reloaded(name, build(), build)
    _same(name, "state round-trip (state_dict saved and loaded)", out,
          _run(name, "state round-trip (state_dict saved and loaded)", lambda: value(reloaded)))


@_keeps_rng
def check_pretrainer(factory: Factory, *, image_size: tuple[int, int] = (32, 32), batch: int = 16,
                     **options: Any) -> None:
    """A pretrainer builds around a toy backbone, keeps it, makes two views and a finite loss, and resumes."""
    kind_factory = _factory("pretrainer", factory)
    column = getattr(kind_factory, "label_column", None)
    extra = {"classes": ["a", "b"]} if isinstance(column, str) else {}
    backbones: list[nn.Module] = []

    def args() -> tuple:
        backbones.append(nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), nn.BatchNorm2d(16), nn.ReLU()))
        return (backbones[-1], 16)

    name, build = _builder("pretrainer", factory, args, {**extra, **options})
    built = _run(name, "build", build)
    _expect(name, "build", built.backbone is backbones[-1], "`.backbone` to be the very module the factory got")
    pair = _run(name, "augmentations", lambda: built.augmentations(tuple(image_size)))
    _expect(name, "augmentations", isinstance(pair, tuple) and len(pair) == 2 and all(map(callable, pair)),
            "augmentations(image_size) to return two callables")
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (batch, 3, *image_size), dtype=np.uint8))
    torch.manual_seed(0)
    views = [torch.stack([_view(name, transform, image) for image in images]) for transform in pair]
    labels = (torch.arange(batch) % 2,) if extra else ()

    def value(pretrainer: nn.Module) -> torch.Tensor:
        torch.manual_seed(0)
        return pretrainer.train()(*views, *labels).detach()

    state = copy.deepcopy(built.state_dict())
    out = _run(name, "output shape", lambda: value(built))
    _expect(name, "output shape", out.shape == () and bool(torch.isfinite(out)), f"a finite scalar loss, got {out}")
    _run(name, "after_step", built.after_step)
    _same(name, "determinism (same seed, same output)", out, value(build()))
    fresh = build(1)
    _run(name, "state round-trip (state_dict saved and loaded)", lambda: fresh.load_state_dict(_saved(state)))
    _same(name, "state round-trip (state_dict saved and loaded)", out, value(fresh))


@_keeps_rng
def check_augmentation(factory: Factory, *, ground_size: tuple[int, int] = (16, 64),
                       aerial_size: tuple[int, int] = (32, 32), **options: Any) -> None:
    """An augmentation maps a uint8 panorama and tile to float [0, 1] of the same sizes, the same for a seed."""
    name, build = _builder("augmentation", factory, (tuple(ground_size), tuple(aerial_size)), options)
    rng = np.random.default_rng(0)
    panorama, tile = (torch.from_numpy(rng.integers(0, 256, (3, *size), dtype=np.uint8))
                      for size in (ground_size, aerial_size))

    def value(augmentation: Callable[..., Any]) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        return augmentation(panorama.clone(), tile.clone())

    out = _run(name, "output shape", lambda: value(build()))
    for got, given, view in zip(out, (panorama, tile), ("panorama", "tile")):
        ok = isinstance(got, torch.Tensor) and got.is_floating_point() and got.shape == given.shape
        _expect(name, "output shape", ok and bool((got >= 0).all() and (got <= 1).all()),
                f"the {view} as float in [0, 1] of shape {tuple(given.shape)}")
    for got, again in zip(out, value(build())):
        _same(name, "determinism (same seed, same output)", got, again)


@_keeps_rng
def check_sampler(factory: Factory, *, items: int = 96, batch_size: int = 16, **options: Any) -> None:
    """A sampler plans batches the engine accepts, keeping conflicting items apart, the same for a seed."""
    name, build = _builder("sampler", factory, (), options)
    rng = np.random.default_rng(0)
    tiles = np.arange(items) // 2 * 2  # pairs of items share a tile: they conflict
    conflicts = [(int(tile), int(tile) + 1) for tile in tiles]
    meta = pd.DataFrame({"lat": 52.0 + rng.random(items) / 100, "lon": 4.3 + rng.random(items) / 100})
    meta["x"], meta["y"] = rng.random(items) * 1000, rng.random(items) * 1000
    query, gallery = (nn.functional.normalize(_random(items, 8, seed=seed), dim=1).numpy() for seed in (1, 2))

    def batching(epoch: int, embed: Callable[[], Any], seed: int = 0) -> Batching:
        return Batching(conflicts, tiles, meta, batch_size, epoch, torch.Generator().manual_seed(seed), embed)

    def plan(sampler: Any) -> list[list[int]]:
        """Epochs 1 and 2's batches (a mining sampler may start mining in epoch 2), checked as the engine does."""
        epochs = EpochBatches(sampler, _plugin_name(factory), lambda epoch: batching(epoch, lambda: (query, gallery)),
                              torch.Generator().manual_seed(0), items, batch_size)
        planned = []
        for epoch in (1, 2):
            try:
                epochs.prepare(epoch)
            except PluginError as exc:
                raise ConformanceError(f"{exc} (cvbench.testing plan, epoch {epoch})") from None
            planned += epochs.batches
        return planned

    def _no_model() -> Any:
        raise RuntimeError("no model yet in check()")

    built = build()
    _run(name, "check", lambda: built.check(batching(1, _no_model)))
    batches = _run(name, "plan", lambda: plan(built))
    for number, batch in enumerate(batches):
        clash = [(i, j) for i in batch for j in batch if i < j and int(tiles[j]) in conflicts[i]]
        _expect(name, "plan", not clash, f"no batch to hold conflicting items; batch {number} holds {clash[:1]}")
    _expect(name, "determinism (same seed, same output)", plan(build()) == batches,
            "the same batches from the same batching.generator seed")


@_keeps_rng
def check_dataset(factory: Factory, root: Any = None, *, splits: list[str] | None = None, **options: Any) -> None:
    """A dataset lists its splits and loads each ``train`` and ``val`` as pairs of images, the same on a rebuild."""
    name, build = _builder("dataset", factory, (root,), options)
    first, second = build(), build()
    offered = _run(name, "splits", lambda: list(first.splits()))
    _expect(name, "splits", bool(offered) and all(isinstance(s, str) and s for s in offered),
            f"splits() to list protocol names, got {offered!r}")
    for split in splits or offered:
        for subset in ("train", "val"):
            pairs = _run(name, f"load({split!r}, {subset!r})", lambda: first.load(split, subset))
            where = f"load({split!r}, {subset!r})"
            _expect(name, where, isinstance(pairs, CrossViewPairs), "a cvbench.data.CrossViewPairs")
            _expect(name, where, len(pairs.ground) > 0 and len(pairs.aerial) > 0, "ground and aerial images")
            for view in ("ground", "aerial"):
                image = np.asarray(getattr(pairs, view)[0])
                _expect(name, where, image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3,
                        f"{view} images as uint8 (H, W, 3), got {image.dtype} {image.shape}")
            again = second.load(split, subset)
            same = np.array_equal(pairs.positives, again.positives) and all(
                np.array_equal(np.asarray(getattr(pairs, v)[0]), np.asarray(getattr(again, v)[0]))
                for v in ("ground", "aerial"))
            _expect(name, "determinism (same seed, same output)", same, f"{where} to give the same pairs twice")


CHECKS: dict[str, Callable[..., None]] = {"head": check_head, "loss": check_loss, "pretrainer": check_pretrainer,
                                          "augmentation": check_augmentation, "sampler": check_sampler,
                                          "dataset": check_dataset}
"""The kinds cvbench.testing checks, and their check."""


def _factory(kind: str, factory: Factory) -> Callable[..., Any]:
    return get_registry().get(kind, factory).factory if isinstance(factory, str) else factory


def _builder(kind: str, factory: Factory, args: tuple | Callable[[], tuple],
             options: dict[str, Any]) -> tuple[str, Callable[..., Any]]:
    """The plugin's name and ``build(seed=0)``, which builds it through a registry of its own after seeding torch."""
    name = _plugin_name(factory)
    registry, label = _registry_with(kind, name, _factory(kind, factory)), f"{kind} {name!r}"

    def build(seed: int = 0) -> Any:
        torch.manual_seed(seed)
        try:
            return registry.create(kind, name, *(args() if callable(args) else args), **options)
        except CvbenchError as exc:
            raise ConformanceError(f"{label} failed build: {exc}") from None

    return label, build


def _plugin_name(factory: Factory) -> str:
    return factory if isinstance(factory, str) else getattr(factory, "__name__", type(factory).__name__)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)} values {value.detach().flatten()[:3].tolist()}"
    return type(value).__name__


def _registry_with(kind: str, name: str, factory: Callable[..., Any]) -> Registry:
    """A registry holding only this plugin: checks a factory no entry point registered."""

    def hook(register: Callable[..., None]) -> None:
        register(name, factory)

    plugin = types.SimpleNamespace(**{KINDS[kind]: hookimpl(hook)})
    registry = Registry()
    registry.add(plugin, source="cvbench.testing")
    return registry


def _run(name: str, check: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ConformanceError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's own error, named with the check it failed
        raise ConformanceError(f"{name} failed {check}: {type(exc).__name__}: {exc}") from exc


def _expect(name: str, check: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ConformanceError(f"{name} failed {check}: expected {expected}")


def _same(name: str, check: str, first: torch.Tensor, second: Any) -> None:
    ok = isinstance(second, torch.Tensor) and second.shape == first.shape and torch.equal(first, second)
    if not ok:
        got = second.flatten()[:3].tolist() if isinstance(second, torch.Tensor) else type(second).__name__
        raise ConformanceError(f"{name} failed {check}: expected {first.flatten()[:3].tolist()}..., got {got}...")


def _saved(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` through ``torch.save`` / ``torch.load(weights_only=True)``: tensors and plain values only."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _reloaded(name: str, built: nn.Module, build: Callable[[int], nn.Module]) -> nn.Module:
    """A build from another seed that loaded ``built``'s saved ``state_dict``, strictly.

    Only what ``state_dict`` holds carries over, as on ``--resume``: state kept
    in a plain attribute keeps the other seed's value and shows as a difference.
    """
    fresh = build(1)
    _run(name, "state round-trip (state_dict saved and loaded)",
         lambda: fresh.load_state_dict(_saved(built.state_dict())))
    return fresh


def _view(name: str, transform: Callable[..., Any], image: torch.Tensor) -> torch.Tensor:
    view = _run(name, "augmentations", lambda: transform(image))
    ok = isinstance(view, torch.Tensor) and view.is_floating_point() and tuple(view.shape) == tuple(image.shape)
    _expect(name, "augmentations", ok, f"a view as float (3, H, W), got {_describe(view)}")
    return view


def _toy_model(dim: int) -> TwoBranchNet:
    """The two-branch network a loss's ``attach`` receives, at toy size: 16 x 16 images -> ``dim``."""
    torch.manual_seed(0)
    return TwoBranchNet(*(Branch(nn.Sequential(nn.Conv2d(3, 4, 4, stride=4), nn.Flatten()), nn.Linear(64, dim))
                          for _ in range(2)), dim=dim)


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
