"""Refuse a run whose batches cannot fit the device, before any compute and before its folder is made.

The estimate (:mod:`cvbench.nn.memory`) is the model's weights (with a
gradient and Adam's two moments for each trainable one) plus the largest
batch a stage holds: fine-tuning keeps every backbone layer's output of both
branches for the backward pass, pre-training those of a branch's two views,
evaluation only the largest layer outputs of one branch. Heads, losses and a
pretrainer's own encoders (MoCo's momentum copy) are left out: small next to
the backbones' activations. Under ``torchrun`` each process checks its own
share of the batch against its own device.

``CVBENCH_MEMORY_CHECK=0`` skips the check, for a machine where the
estimate is known to be too cautious.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from ..errors import SpecError
from ..nn import distributed
from ..nn.memory import activation_value_bytes, available_bytes, footprint, parameter_bytes, size_text
from ..nn.model import TwoBranchNet
from ..spec import BRANCHES, RunSpec, pretrains

SKIP_ENV = "CVBENCH_MEMORY_CHECK"


@dataclass(frozen=True)
class BatchEstimate:
    """The estimated bytes of one process's largest batch: which stage, under which option, and what it holds."""

    stage: str
    option: str
    batch: int
    activations: int
    weights: int

    @property
    def total(self) -> int:
        return self.activations + self.weights


def batch_estimate(spec: RunSpec, model: TwoBranchNet, device: torch.device) -> BatchEstimate:
    """The :class:`BatchEstimate` of the stage whose batch needs the most memory on ``device``, for one process."""
    sizes = {branch: spec.input_size(branch) for branch in BRANCHES}
    value = activation_value_bytes(device)
    share = distributed.world_size() if distributed.active() else 1
    prints = {branch: footprint(model.branch(branch).backbone, sizes[branch]) for branch in BRANCHES}

    def held(branch: str, batch: int, views: int = 1) -> int:
        if any(param.requires_grad for param in model.branch(branch).backbone.parameters()):
            return views * prints[branch].training_bytes(batch, value)
        return views * prints[branch].inference_bytes(batch, value)  # a frozen backbone keeps nothing for backward

    stages = [("evaluation", "--eval-batch-size", spec.eval_batch_size,
               max(prints[branch].inference_bytes(spec.eval_batch_size, value) for branch in BRANCHES))]
    batch = math.ceil(spec.batch_size / share)
    if spec.epochs > 0:
        stages.append(("fine-tuning", "--batch-size", batch, sum(held(branch, batch) for branch in BRANCHES)))
    batch = math.ceil(spec.pretrain_batch_size / share)
    stages += [(f"{branch} pre-training", "--pretrain-batch-size", batch, held(branch, batch, views=2))
               for branch in BRANCHES if pretrains(spec, branch)]
    stage, option, batch, activations = max(stages, key=lambda stage: stage[3])
    return BatchEstimate(stage, option, batch, activations, parameter_bytes(model, training=spec.epochs > 0))


def check_batch_memory(spec: RunSpec, model: TwoBranchNet, device: torch.device) -> None:
    """Raise :class:`SpecError` when the estimated memory of the largest batch exceeds what ``device`` has free."""
    if os.environ.get(SKIP_ENV, "").strip() == "0":
        return
    available = available_bytes(device)
    if available is None:
        return
    try:
        estimate = batch_estimate(spec, model, device)
    except Exception:  # noqa: BLE001 - a backbone the meta device cannot run: no estimate, no refusal
        return
    if estimate.total <= available:
        return
    where = "free on the GPU" if device.type == "cuda" else "of RAM available"
    sizes = {branch: "x".join(map(str, spec.input_size(branch))) for branch in BRANCHES}
    raise SpecError(
        f"one {estimate.stage} batch ({estimate.option} {estimate.batch}) needs about {size_text(estimate.total)}: "
        f"{size_text(estimate.activations)} of activations at ground {sizes['ground']} and aerial {sizes['aerial']} "
        f"plus {size_text(estimate.weights)} of weights, but {device.type} has {size_text(available)} {where}: "
        f"lower {estimate.option}, --ground-size/--aerial-size or --backbone-stage (an estimate; {SKIP_ENV}=0 "
        "skips this check)")
