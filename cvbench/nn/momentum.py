"""Momentum (exponential-moving-average) encoders.

MoCo keeps a key encoder that trails the query encoder (He et al. 2020,
thesis eq 3.2): ``xi' <- m xi' + (1 - m) theta'``. BYOL's target network does
the same (Grill et al. 2020, thesis eq 2.4) with a rate that rises from
``tau_base`` to 1 on a cosine schedule. Only parameters are averaged; the
copy's buffers (BatchNorm running statistics) come from its own forward
passes, as in both reference implementations.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` that no optimizer will train: every parameter has ``requires_grad=False``.

    Both MoCo and BYOL start the momentum encoder as an exact copy of the
    online one ("f_k.params = f_q.params", Algorithm 1).
    """
    twin = copy.deepcopy(module)
    for param in twin.parameters():
        param.requires_grad_(False)
        param.grad = None
    return twin


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target``'s parameters towards ``online``'s, in place (thesis eq 3.2 / eq 2.4).

    ``target <- momentum * target + (1 - momentum) * online`` for every pair of
    parameters in registration order; the two modules must have the same
    structure. ``momentum = 1`` leaves ``target`` unchanged, ``0`` copies ``online``.
    """
    for param_t, param_o in zip(target.parameters(), online.parameters(), strict=True):
        param_t.mul_(momentum).add_(param_o.detach(), alpha=1.0 - momentum)


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's rate at training step ``k`` of ``K``: ``tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2``.

    Grill et al. 2020, section 3.2. The rate is ``base`` at ``k = 0`` and 1 at
    ``k = K``; steps past ``K`` keep rate 1. ``total_steps = 0`` means no
    schedule: the rate stays ``base``.
    """
    if total_steps <= 0:
        return base
    progress = min(step, total_steps) / total_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
