"""How long a run will take on this machine: a few timed steps of each stage, times the steps the spec plans.

``cvbench run`` prints the estimate as its first line, so a newcomer knows at
once whether to wait or to come back later. :func:`measure_rates` times a
few optimiser steps of each training stage (loading a real batch included)
and the embedding of one evaluation batch of each view, on a copy of the
model: the run's weights, BatchNorm statistics and random state are left as
they were, so the estimate changes no number of the run. :func:`plan_run`
counts what the run will do and :func:`expected_seconds` multiplies the two.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..contract.conform import factory_declares, label_column
from ..contract.registry import create, get_registry
from ..data.loaders import Pairs, TwoViews, Views, normalize, readers
from ..evaluation.probe import PROBE_IMAGES
from ..nn.device import autocast, prepare_module, use_channels_last
from ..nn.model import TwoBranchNet
from ..spec import BRANCHES, NO_AUGMENTATION, RunSpec, pretrains
from ..training.finetune import FinetuneForward, Objective, finetune_step, make_optimizer
from ..training.loop import trainable
from ..training.pretrain import pretrain_step, steps_per_epoch
from ..training.resume import restore_rng, rng_state
from .subsets import Data, pretraining_set

TIMED_STEPS = 3
"""Steps timed per stage, after one untimed warm-up step (oneDNN builds its kernels in the first)."""


@dataclass(frozen=True)
class Plan:
    """What a run will do, counted: optimiser steps of each stage and images embedded."""

    pretrain_steps: int
    finetune_steps: int
    evaluations: int
    eval_images: int
    """Images one evaluation embeds: the chosen queries and the whole gallery."""
    other_images: int
    """Images embedded outside evaluations: the pre-training probes (before and after, two views each)."""


@dataclass(frozen=True)
class Rates:
    """Measured seconds per pre-training step, per fine-tuning step (each loading its batch) and per image embedded."""

    pretrain_step: float
    finetune_step: float
    embed_image: float


def evaluated_epochs(epochs: int, every: int) -> list[int]:
    """The fine-tuning epochs after which the run evaluates: 0 (before training), every ``every``-th, the last."""
    return [0] + [epoch for epoch in range(1, epochs + 1) if epoch % every == 0 or epoch == epochs]


def expected_seconds(plan: Plan, rates: Rates) -> float:
    """The seconds the planned work takes at the measured rates."""
    embedded = plan.evaluations * plan.eval_images + plan.other_images
    return (plan.pretrain_steps * rates.pretrain_step + plan.finetune_steps * rates.finetune_step
            + embedded * rates.embed_image)


def duration(seconds: float) -> str:
    """``seconds`` as a person reads a wait: ``45 s``, ``2 min 40 s``, ``1 h 05 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def expected_line(plan: Plan, rates: Rates, spent: float = 0.0) -> str:
    """The run's first line: the total (``spent`` seconds so far included) and the measurements it comes from."""
    parts = []
    if plan.pretrain_steps:
        parts.append(f"{rates.pretrain_step:.2f} s/step x {plan.pretrain_steps} pre-training steps")
    if plan.finetune_steps:
        parts.append(f"{rates.finetune_step:.2f} s/step x {plan.finetune_steps} fine-tuning steps")
    embedded = plan.evaluations * plan.eval_images + plan.other_images
    parts.append(f"{rates.embed_image * 1000:.1f} ms/image x {embedded:,} images embedded in "
                 f"{plan.evaluations} evaluation{'s' if plan.evaluations != 1 else ''}"
                 + (" and the pre-training probes" if plan.other_images else ""))
    total = spent + expected_seconds(plan, rates)
    return f"expected: about {duration(total)} on this machine (measured {', '.join(parts)})"


def plan_run(spec: RunSpec, data: Data, finetunes: bool = True) -> Plan:
    """Count the steps and embedded images of a run of ``spec`` on ``data`` (a resolved spec).

    Fine-tuning's steps per epoch are the whole batches of the training
    pairs (the last, partial one is dropped; a sampler that closes a batch
    early makes a few more); a mining sampler's embedding of the training
    pairs is not counted.
    """
    pretrain_steps = probe_images = 0
    for branch in BRANCHES:
        if pretrains(spec, branch):
            images, _, indices = pretraining_set(spec, data, branch)
            count = len(images) if indices is None else len(indices)
            pretrain_steps += spec.pretrain_epochs * steps_per_epoch(count, spec.pretrain_batch_size)
            probed = len(data.val.ground if branch == "ground" else data.val.aerial)
            probe_images += 2 * 2 * min(PROBE_IMAGES, probed)
    finetune_steps = evaluations = 0
    if finetunes:
        pairs = len(data.train_indices)
        finetune_steps = spec.epochs * (pairs // max(min(spec.batch_size, pairs), 1))
        evaluations = len(evaluated_epochs(spec.epochs, spec.eval_every))
    return Plan(pretrain_steps, finetune_steps, evaluations, len(data.val_queries) + data.val.num_references,
                probe_images)


def measure_rates(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device, plan: Plan) -> Rates:
    """Time a few steps of each stage ``plan`` has and one evaluation batch per view, on a copy of ``model``.

    Every global random state is put back afterwards: the run draws exactly
    what it would have drawn without the measurement.
    """
    saved = rng_state()
    try:
        trial = prepare_module(copy.deepcopy(model), device, use_channels_last(device, spec.channels_last))
        pretrain = _pretrain_step_seconds(spec, trial, data, device) if plan.pretrain_steps else 0.0
        finetune = _finetune_step_seconds(spec, trial, data, device) if plan.finetune_steps else 0.0
        embed = _embed_image_seconds(spec, trial, data, device)
    finally:
        restore_rng(saved)
    return Rates(pretrain, finetune, embed)


def _pretrain_step_seconds(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device) -> float:
    branch = next(branch for branch in BRANCHES if pretrains(spec, branch))
    images, meta, indices = pretraining_set(spec, data, branch)
    backbone = model.branch(branch).backbone
    options = dict(spec.pretrain_options)
    factory = get_registry().get("pretrainer", spec.pretrainer).factory
    column = options.get("label_column", label_column(factory))
    labels = None
    if column is not None:
        if meta is None or column not in meta.columns:
            return 0.0  # the stage itself names the missing column
        names = meta[column].astype(str).to_numpy()
        options["classes"] = sorted(set(names))
        labels = np.searchsorted(np.asarray(options["classes"]), names)
    if "total_steps" not in options and factory_declares(factory, "total_steps"):
        options["total_steps"] = max(spec.pretrain_epochs, 1)
    pretrainer = create("pretrainer", spec.pretrainer, backbone, backbone.out_channels, **options).to(device).train()
    reader = readers(spec)[branch]
    dataset = TwoViews(images, reader, pretrainer.augmentations(reader.output_size), indices, labels)
    if len(dataset) < spec.pretrain_batch_size:
        return 0.0  # the stage itself refuses the batch size
    params = trainable(pretrainer)
    optimizer = torch.optim.SGD(params, lr=spec.pretrain_lr, momentum=0.9, weight_decay=spec.pretrain_weight_decay)
    channels_last = use_channels_last(device, spec.channels_last)
    loading, (view1, view2, *label) = _load_batch(dataset, spec.pretrain_batch_size)
    return loading + _seconds_per_call(lambda: pretrain_step(pretrainer, optimizer, params, view1, view2, label,
                                                             device, spec.grad_clip, channels_last=channels_last),
                                       device)


def _finetune_step_seconds(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device) -> float:
    objective = Objective.from_spec(spec).to(device)
    objective.attach(model)
    params = trainable(model, objective)
    if not params:
        return 0.0  # the stage itself refuses a run with nothing to train
    optimizer = make_optimizer(spec, params)
    augment = None
    if spec.finetune_aug != NO_AUGMENTATION:
        augment = create("augmentation", spec.finetune_aug, tuple(spec.ground_size), tuple(spec.aerial_size),
                         **spec.finetune_aug_options)
    train = data.train
    dataset = Pairs(train.ground, train.aerial, train.positives, data.train_indices, readers(spec), augment)
    loading, (ground, aerial) = _load_batch(dataset, spec.batch_size)
    forward = FinetuneForward(model, objective)
    channels_last = use_channels_last(device, spec.channels_last)
    return loading + _seconds_per_call(lambda: finetune_step(forward, optimizer, params, ground, aerial, device,
                                                             grad_clip=spec.grad_clip, channels_last=channels_last),
                                       device)


def _embed_image_seconds(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device) -> float:
    """Seconds per image of embedding one batch of queries and one of the gallery (loading included)."""
    val, views = data.val, readers(spec)
    seconds = images = 0.0
    for branch, subset, indices in ((val.query_view, val.queries, data.val_queries),
                                    (val.gallery_view, val.gallery, np.arange(val.num_references))):
        dataset = Views(subset, views[branch], indices[:spec.eval_batch_size])
        if not len(dataset):
            continue
        model.eval()

        @torch.no_grad()
        def embed_batch(dataset: Dataset = dataset, branch: str = branch) -> None:
            batch = default_collate([dataset[i] for i in range(len(dataset))])
            with autocast(device):
                model.embed(branch, normalize(batch.to(device)))

        seconds += _seconds_per_call(embed_batch, device, timed=1)
        images += len(dataset)
    return seconds / images if images else 0.0


def _load_batch(dataset: Dataset, batch_size: int) -> tuple[float, list[torch.Tensor]]:
    """(seconds to load and collate the first ``batch_size`` items, the batch)."""
    started = time.perf_counter()
    batch = default_collate([dataset[i] for i in range(min(batch_size, len(dataset)))])
    return time.perf_counter() - started, batch


def _seconds_per_call(call: Callable[[], object], device: torch.device, timed: int | None = None) -> float:
    """Mean seconds of ``timed`` (default :data:`TIMED_STEPS`) calls after one untimed warm-up call."""
    timed = timed or TIMED_STEPS
    call()
    _wait(device)
    started = time.perf_counter()
    for _ in range(timed):
        call()
    _wait(device)
    return (time.perf_counter() - started) / timed


def _wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["Plan", "Rates", "duration", "evaluated_epochs", "expected_line", "expected_seconds", "measure_rates",
           "plan_run"]
