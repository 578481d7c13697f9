"""The plugin contract: the nine hooks a cvbench plugin module may implement, one per kind of plugin.

Every hook receives ``register(name, factory, summary="")``. Each kind's
base class in :mod:`cvbench.contract` (``cvbench.Pretrainer``, ``cvbench.Loss``,
``cvbench.Dataset``, ``cvbench.Augmentation``, ``cvbench.Metric``,
``cvbench.Sampler``, ``cvbench.Logger``, the ``cvbench.Head`` Protocol)
declares what its factory must build, with every optional capability and
its default; subclassing them is optional:

- pretrainer: ``factory(backbone, feature_dim, **options)`` -> ``nn.Module``
  with ``forward(view1, view2) -> loss``, ``after_step()``,
  ``augmentations(image_size) -> (t1, t2)`` and ``.backbone``.
- head: ``factory(in_channels, feature_hw, dim, **options)`` -> ``nn.Module``
  mapping a feature map ``(B, C, H, W)`` to an embedding ``(B, dim)``.
- loss: ``factory(**options)`` -> ``nn.Module`` mapping
  ``(z_ground (B, D), z_aerial (B, D))`` to a scalar.
- dataset: ``factory(root, **options)`` -> an object with ``splits()`` and
  ``load(split, subset)`` (:class:`cvbench.Dataset` supplies ``load``).
- augmentation: ``factory(ground_size, aerial_size, **options)`` -> a callable
  ``(panorama uint8 (3, H, W), tile uint8 (3, h, w)) -> (panorama, tile)`` float
  in [0, 1], applied to each fine-tuning pair (``--finetune-aug NAME``).
- preset: a ``dict`` of run options (``--preset NAME``); explicit options override it.
- metric: ``factory(**options)`` -> a callable ``(retrieval) -> {name: value}``
  (``--metric NAME``), see :class:`cvbench.Metric`.
- sampler: ``factory(**options)`` -> an object with ``plan(batching) -> batches``
  (``--sampler NAME``), see :class:`cvbench.Sampler`.
- logger: ``factory(**options)`` -> an experiment tracker with ``start``,
  ``log_hyperparameters``, ``log_metrics``, ``log_artifact`` and ``finish``
  (``--logger NAME``), see :class:`cvbench.Logger`.

Shared building blocks for methods (MoCo's queue, momentum encoders,
InfoNCE, split BatchNorm, collectives) are in :mod:`cvbench.nn`, option
checks in :mod:`cvbench.contract.options`; a plugin imports them from there, never
from another plugin.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "cvbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


@hookspec
def register_pretrainers(register: Register) -> None:
    """Register self-supervised pre-training methods (thesis section 3.1)."""


@hookspec
def register_heads(register: Register) -> None:
    """Register aggregation heads: feature map -> embedding (appendix 6.1)."""


@hookspec
def register_losses(register: Register) -> None:
    """Register cross-view fine-tuning losses (thesis section 3.2.2, 3.4.1)."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register cross-view datasets (ground queries, aerial references)."""


@hookspec
def register_augmentations(register: Register) -> None:
    """Register fine-tuning pair augmentations (thesis section 3.4.2)."""


@hookspec
def register_presets(register: Register) -> None:
    """Register presets: named dicts of run options, e.g. the thesis' section 4.2 settings."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register evaluation metrics: named values from an evaluation's embeddings, positives and metadata."""


@hookspec
def register_samplers(register: Register) -> None:
    """Register batch samplers: which training pairs share a fine-tuning batch."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register experiment trackers: where a run's spec, losses, metrics and files are also logged."""
