"""Stage 2: cross-view fine-tuning of the two-branch network (thesis section 3.2).

The objective is the weighted sum of the ``--loss`` terms (eq 3.10), each
getting the L2-normalised ground and aerial embeddings of a batch of pairs.
Adam, as in section 4.2. A loss may opt into three extensions: ``attach(model)``
(called once), ``needs_images = True`` (also receives the two image batches)
and ``after_step()`` (called after each optimiser step); see docs/plugins.md.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from .data import CrossViewPairs
from .device import autocast
from .loaders import PairTransform, Pairs, normalize, readers
from .model import TwoBranchNet
from .registry import create
from .sampling import ConflictFreeBatchSampler, tiles_per_query
from .spec import RunSpec
from .training import check_finite, step, trainable


class Objective(nn.Module):
    """The weighted sum of fine-tuning losses (eq 3.10)."""

    def __init__(self, terms: list[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.weights = [weight for _, weight, _ in terms]
        self.terms = nn.ModuleList(module for _, _, module in terms)

    @classmethod
    def from_spec(cls, spec: RunSpec) -> "Objective":
        terms = []
        for name, weight in spec.loss:
            terms.append((name, weight, create("loss", name, **spec.loss_options.get(name, {}))))
        return cls(terms)

    def attach(self, model: TwoBranchNet) -> None:
        for term in self.terms:
            if hasattr(term, "attach"):
                term.attach(model)

    def forward(self, z_ground: torch.Tensor, z_aerial: torch.Tensor, ground: torch.Tensor,
                aerial: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        total = z_ground.new_zeros(())
        parts = {}
        for name, weight, term in zip(self.names, self.weights, self.terms):
            if getattr(term, "needs_images", False):
                value = term(z_ground, z_aerial, ground, aerial)
            else:
                value = term(z_ground, z_aerial)
            parts[name] = float(value.detach())
            total = total + weight * value
        return total, parts

    def after_step(self) -> None:
        for term in self.terms:
            if hasattr(term, "after_step"):
                term.after_step()


EpochCallback = Callable[[int, dict[str, float]], None]


def finetune_step(model: TwoBranchNet, objective: Objective, optimizer: torch.optim.Optimizer,
                  params: list[torch.nn.Parameter], ground: torch.Tensor, aerial: torch.Tensor,
                  device: torch.device, grad_clip: float | None = None,
                  where: tuple[int, int] = (0, 0)) -> tuple[float, dict[str, float]]:
    """One fine-tuning step on a batch of [0, 1] image pairs: (loss, each term's value).

    ``where`` (epoch, batch) names the step if the loss is not finite.
    """
    ground, aerial = normalize(ground.to(device)), normalize(aerial.to(device))
    with autocast(device):
        z_ground, z_aerial = model.embed("ground", ground), model.embed("aerial", aerial)
        loss, parts = objective(z_ground, z_aerial, ground, aerial)
    value = check_finite(loss, "fine-tuning", *where)
    step(optimizer, loss, params, grad_clip)
    objective.after_step()
    return value, parts


def finetune(model: TwoBranchNet, objective: Objective, pairs: CrossViewPairs, indices: Sequence[int],
             spec: RunSpec, device: torch.device, generator: torch.Generator, progress: Progress | None,
             augment: PairTransform | None, on_epoch_end: EpochCallback) -> float:
    """Train ``model`` for ``spec.epochs`` on the pairs ``indices``; returns the seconds spent training."""
    indices = np.asarray(indices)
    dataset = Pairs(pairs.ground, pairs.aerial, pairs.positives, indices, readers(spec), augment)
    semi = pairs.semi_positives[indices] if pairs.semi_positives is not None else None
    sampler = ConflictFreeBatchSampler(tiles_per_query(pairs.positives[indices], semi),
                                       min(spec.batch_size, len(dataset)), generator)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=spec.workers)
    objective.to(device).attach(model)
    params = trainable(model, objective)
    optimizer = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    task = progress.add_task("fine-tune", total=spec.epochs * len(loader), info="") if progress else None
    seconds = 0.0
    done = 0
    for epoch in range(1, spec.epochs + 1):
        if progress is not None:  # conflict-free batching makes each epoch's count exact only once drawn
            progress.update(task, total=done + len(loader) * (spec.epochs - epoch + 1))
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        sums: dict[str, float] = {}
        for batch, (ground, aerial) in enumerate(loader, start=1):
            value, parts = finetune_step(model, objective, optimizer, params, ground, aerial, device,
                                         spec.grad_clip, (epoch, batch))
            total, count, done = total + value, count + 1, done + 1
            for name, part in parts.items():
                sums[name] = sums.get(name, 0.0) + part
            if progress is not None:
                progress.update(task, advance=1, info=f"epoch {epoch}/{spec.epochs} loss {total / count:.4f}")
        seconds += time.perf_counter() - started
        stats = {"loss": total / max(count, 1), **{f"loss_{n}": s / max(count, 1) for n, s in sums.items()},
                 "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds}
        on_epoch_end(epoch, stats)
    return seconds
