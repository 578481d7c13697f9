"""What both training stages share: optimiser steps that refuse NaN losses."""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import TrainingDivergedError


def check_finite(loss: torch.Tensor, stage: str, epoch: int, batch: int) -> float:
    """The loss as a float, or :class:`TrainingDivergedError` naming where it broke."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{stage}: the loss became {value} at epoch {epoch}, batch {batch}. Lower the learning rate, "
            "set --grad-clip, or check the inputs; the last good checkpoint is kept.")
    return value


def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters: list[nn.Parameter],
         grad_clip: float | None = None) -> None:
    """Backward, optional gradient-norm clipping, optimiser step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()


def trainable(*modules: nn.Module) -> list[nn.Parameter]:
    """Parameters that require grad, each once, in a stable order."""
    seen: set[int] = set()
    params = []
    for module in modules:
        for param in module.parameters():
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                params.append(param)
    return params
