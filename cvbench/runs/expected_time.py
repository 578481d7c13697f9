"""How long a run will take on this machine: the work its spec plans, and a few timed steps of each stage.

The one place that counts a run's work and measures its step rates. ``cvbench
run`` prints the estimate as its first line, so a newcomer knows at once
whether to wait or to come back later; ``cvbench bench FILE --estimate``
(:mod:`cvbench.bench.estimate`) sums the same counts and measurements over a
grid. :func:`plan_run` counts what a run will do, :func:`measure_step` times
a few optimiser steps of one stage (loading a real batch included) or the
embedding of one evaluation batch of each view, :func:`measure_rates` does so
for every stage of a run on a copy of its model (the run's weights,
BatchNorm statistics and random state are left as they were, so the
estimate changes no number of the run), and :func:`expected_seconds`
multiplies the counts by the rates.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..contract.registry import create, get_registry
from ..data.loaders import Pairs, Views, collate_encoded, normalize, readers
from ..errors import SpecError
from ..evaluation.probe import PROBE_IMAGES
from ..nn.device import autocast, prepare_module, use_channels_last
from ..nn.model import TwoBranchNet
from ..progress import counted
from ..spec import BRANCHES, NO_AUGMENTATION, RunSpec, pretrains
from ..training.finetune import FinetuneForward, Objective, finetune_step, make_optimizer
from ..training.loop import one_thread_each, trainable
from ..training.pretrain import batch_views, make_pretrainer, pretrain_step, pretraining_views, steps_per_epoch
from ..training.resume import random_state_kept
from .subsets import Data, pretraining_set

TIMED_STEPS = 3
"""Steps timed per stage, after one untimed warm-up step (oneDNN builds its kernels in the first)."""
STAGES = ("pretrain", "finetune", "embed")
"""What :func:`measure_step` times: a pre-training step, a fine-tuning step, one evaluation batch of each view."""


@dataclass(frozen=True)
class Plan:
    """What a run will do, counted: optimiser steps of each stage with their batches, and images embedded."""

    pretrain: dict[str, int]
    """Pre-training optimiser steps of each pre-trained branch."""
    finetune_steps: int
    evaluations: int
    eval_images: int
    """Images one evaluation embeds: the chosen queries and the whole gallery (none in a pre-training stage)."""
    other_images: int
    """Images embedded outside evaluations: the pre-training probes (before and after, two views each)."""
    pretrain_batch: int = 0
    finetune_batch: int = 0
    """Pairs a fine-tuning step takes: the batch size, or all the training pairs where they are fewer."""
    mining_images: int = 0
    """Images a mining sampler embeds over the run: the training pairs and their tiles before each epoch
    but the first."""

    @property
    def pretrain_steps(self) -> int:
        return sum(self.pretrain.values())

    @property
    def pretrain_images(self) -> dict[str, int]:
        """Images through the pretrainer, per branch: steps x batch."""
        return {branch: steps * self.pretrain_batch for branch, steps in self.pretrain.items()}

    @property
    def finetune_pairs(self) -> int:
        """Pairs through fine-tuning: steps x batch."""
        return self.finetune_steps * self.finetune_batch

    @property
    def embedded_images(self) -> int:
        """Images the run embeds outside training: every evaluation's, and the pre-training probes'."""
        return self.evaluations * self.eval_images + self.other_images


@dataclass(frozen=True)
class Rates:
    """Measured seconds per pre-training step, per fine-tuning step (each loading its batch) and per image embedded."""

    pretrain_step: float
    finetune_step: float
    embed_image: float


@dataclass(frozen=True)
class StepTime:
    """One stage's measurement: seconds a step (its batch's loading included), the items a step takes
    (images or pairs), and the seconds its first step takes beyond the others (a fresh network's warm-up)."""

    seconds: float
    items: int
    first: float = 0.0

    @property
    def per_item(self) -> float:
        return self.seconds / self.items if self.items else 0.0


def evaluated_epochs(epochs: int, every: int) -> list[int]:
    """The fine-tuning epochs after which the run evaluates: 0 (before training), every ``every``-th, the last."""
    return [0] + [epoch for epoch in range(1, epochs + 1) if epoch % every == 0 or epoch == epochs]


def expected_seconds(plan: Plan, rates: Rates) -> float:
    """The seconds the planned work takes at the measured rates (a mining sampler's embedding included)."""
    return (plan.pretrain_steps * rates.pretrain_step + plan.finetune_steps * rates.finetune_step
            + (plan.embedded_images + plan.mining_images) * rates.embed_image)


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
    embedders = [counted(plan.evaluations, "evaluation")] if plan.evaluations else []
    if plan.other_images:
        embedders.append("the pre-training probes")
    if plan.mining_images:
        embedders.append("the sampler's mining")
    if embedders:
        where = " and ".join([", ".join(embedders[:-1]), embedders[-1]]) if len(embedders) > 1 else embedders[0]
        parts.append(f"{rates.embed_image * 1000:.1f} ms/image x {plan.embedded_images + plan.mining_images:,} "
                     f"images embedded in {where}")
    total = spent + expected_seconds(plan, rates)
    return f"expected: about {duration(total)} on this machine (measured {', '.join(parts)})"


def plan_run(spec: RunSpec, data: Data, finetunes: bool = True) -> Plan:
    """Count the steps and embedded images of a run of ``spec`` on ``data`` (a resolved spec); ``finetunes``
    False: a pre-training stage only.

    Fine-tuning's steps per epoch are the whole batches of the training
    pairs (the last, partial one is dropped; a sampler that closes a batch
    early makes a few more).
    """
    pretrain: dict[str, int] = {}
    probe_images = 0
    for branch in BRANCHES:
        if pretrains(spec, branch):
            _, _, indices = pretraining_set(spec, data, branch)
            pretrain[branch] = spec.pretrain_epochs * steps_per_epoch(len(indices), spec.pretrain_batch_size)
            probed = len(data.val.ground if branch == "ground" else data.val.aerial)
            probe_images += 2 * 2 * min(PROBE_IMAGES, probed)
    if not finetunes:
        return Plan(pretrain, 0, 0, 0, probe_images, pretrain_batch=spec.pretrain_batch_size)
    pairs = len(data.train_indices)
    batch = max(min(spec.batch_size, pairs), 1)
    mining = 0
    if spec.epochs > 0 and get_registry().get("sampler", spec.sampler).factory.mines:
        tiles = len(np.unique(data.train.positives[data.train_indices]))
        mining = (spec.epochs - 1) * (pairs + tiles)
    return Plan(pretrain, spec.epochs * (pairs // batch), len(evaluated_epochs(spec.epochs, spec.eval_every)),
                len(data.val_queries) + data.val.num_references, probe_images, pretrain_batch=spec.pretrain_batch_size,
                finetune_batch=batch, mining_images=mining)


def measure_rates(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device, plan: Plan) -> Rates:
    """Time a few steps of each stage ``plan`` has and one evaluation batch per view, on a copy of ``model``.

    A run that pre-trains both branches times each (their image sizes differ);
    its rate is their mean weighted by the planned steps. Every global random
    state is put back afterwards: the run draws exactly what it would have
    drawn without the measurement.
    """
    trial = prepare_module(copy.deepcopy(model), device, use_channels_last(device, spec.channels_last))
    pretrain = sum(steps * measure_step("pretrain", spec, trial, data, device, branch).seconds
                   for branch, steps in plan.pretrain.items() if steps)
    finetune = measure_step("finetune", spec, trial, data, device).seconds if plan.finetune_steps else 0.0
    embed = measure_step("embed", spec, trial, data, device).per_item
    return Rates(pretrain / plan.pretrain_steps if plan.pretrain_steps else 0.0, finetune, embed)


def measure_step(stage: str, spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device,
                 branch: str = "", steps: int | None = None) -> StepTime:
    """Time one of :data:`STAGES` of a run of ``spec`` on ``model`` (already on ``device``; its weights change):
    ``steps`` (default :data:`TIMED_STEPS`) steps after a warm-up, through the run's own step functions, data
    and augmentations; ``branch`` names the pre-trained one. Every global random state is put back afterwards.

    A stage the run itself would refuse (a batch larger than its images, a
    missing label column, nothing to train) measures as 0 seconds: the run
    names the problem.
    """
    with random_state_kept():
        if stage == "embed":
            return _embed_seconds(spec, model, data, device)
        timed = steps or TIMED_STEPS
        if stage == "pretrain":
            return _pretrain_step_seconds(spec, model, data, device, branch, timed)
        return _finetune_step_seconds(spec, model, data, device, timed)


def _pretrain_step_seconds(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device, branch: str,
                           steps: int) -> StepTime:
    images, meta, indices = pretraining_set(spec, data, branch)
    reader = readers(spec)[branch]
    try:
        pretrainer, labels, _ = make_pretrainer(spec, branch, model.branch(branch).backbone, images, indices, meta)
        dataset, views = pretraining_views(spec, branch, pretrainer.to(device).train(), images, reader, indices,
                                           labels, device)
    except SpecError:
        return StepTime(0.0, 0)
    params = trainable(pretrainer)
    optimizer = torch.optim.SGD(params, lr=spec.pretrain_lr, momentum=0.9, weight_decay=spec.pretrain_weight_decay)
    channels_last = use_channels_last(device, spec.channels_last)
    loading, batch = _load_batch(dataset, spec.pretrain_batch_size, device, collate_encoded if views else None)

    def one_step() -> None:  # as the stage's: the device makes the views of a batch inside the step
        view1, view2, label = batch_views(batch, views, reader, device)
        pretrain_step(pretrainer, optimizer, params, view1, view2, label, device, spec.grad_clip,
                      channels_last=channels_last)

    seconds, first = _seconds_per_call(one_step, device, steps)
    return StepTime(loading + seconds, spec.pretrain_batch_size, first)


def _finetune_step_seconds(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device,
                           steps: int) -> StepTime:
    objective = Objective.from_spec(spec).to(device)
    objective.attach(model)
    params = trainable(model, objective)
    if not params:
        return StepTime(0.0, 0)
    optimizer = make_optimizer(spec, params)
    augment = None
    if spec.finetune_aug != NO_AUGMENTATION:
        augment = create("augmentation", spec.finetune_aug, tuple(spec.ground_size), tuple(spec.aerial_size),
                         **spec.finetune_aug_options)
    train = data.train
    dataset = Pairs(train.ground, train.aerial, train.positives, data.train_indices, readers(spec), augment)
    loading, (ground, aerial) = _load_batch(dataset, spec.batch_size, device)
    forward = FinetuneForward(model, objective)
    channels_last = use_channels_last(device, spec.channels_last)
    model.train()
    seconds, first = _seconds_per_call(lambda: finetune_step(forward, optimizer, params, ground, aerial, device,
                                                             grad_clip=spec.grad_clip, channels_last=channels_last),
                                       device, steps)
    return StepTime(loading + seconds, len(ground), first)


def _embed_seconds(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device) -> StepTime:
    """Embedding one batch of queries and one of the gallery (loading included), each timed once after a warm-up."""
    val, views = data.val, readers(spec)
    seconds = first = 0.0
    images = 0
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

        batch_seconds, warm_up = _seconds_per_call(embed_batch, device, 1)
        seconds, first, images = seconds + batch_seconds, first + warm_up, images + len(dataset)
    return StepTime(seconds, images, first)


def _load_batch(dataset: Dataset, batch_size: int, device: torch.device,
                collate: Callable[[list], Any] | None = None) -> tuple[float, list[torch.Tensor]]:
    """(seconds to load and collate (``collate``, default torch's) the first ``batch_size`` items, the batch),
    fetched as the run's epoch loop fetches it: with one intra-op thread on the CPU
    (:func:`cvbench.training.loop.one_thread_each`), where all threads took 10-30x longer on a busy machine."""
    collate = collate or default_collate
    batches = (collate([dataset[i] for i in range(min(batch_size, len(dataset)))]) for _ in range(1))
    started = time.perf_counter()
    batch = next(one_thread_each(batches) if device.type == "cpu" else batches)
    return time.perf_counter() - started, batch


def _seconds_per_call(call: Callable[[], object], device: torch.device, timed: int) -> tuple[float, float]:
    """(the median seconds of ``timed`` calls after one untimed warm-up call, which a busy machine's spikes do
    not move; the warm-up call's seconds beyond that)."""
    times = []
    for _ in range(1 + timed):
        started = time.perf_counter()
        call()
        _wait(device)
        times.append(time.perf_counter() - started)
    per_call = float(np.median(times[1:]))
    return per_call, max(times[0] - per_call, 0.0)


def _wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["STAGES", "Plan", "Rates", "StepTime", "duration", "evaluated_epochs", "expected_line", "expected_seconds",
           "measure_rates", "measure_step", "plan_run"]
