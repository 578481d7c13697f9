"""Stage 2: cross-view fine-tuning of the two-branch network (thesis section 3.2).

The objective is the weighted sum of the ``--loss`` terms (eq 3.10), each
getting the L2-normalised ground and aerial embeddings of a batch of pairs.
Adam, as in section 4.2. A loss may use the three optional parts that
:class:`cvbench.Loss` declares: ``attach(model)`` (called once),
``needs_images`` (also receives the two image batches) and ``after_step()``
(called after each optimiser step).

Under ``torchrun`` each rank holds a share of every batch; the objective
gathers the embeddings of all ranks with their gradient, so each loss sees the
whole batch (a loss with ``needs_images`` gets this rank's share, with its own
images).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from ..contract.registry import create
from ..data import CrossViewPairs
from ..data.loaders import Pairs, PairTransform, normalize, readers
from ..data.sampling import ConflictFreeBatchSampler, ShardedBatchSampler, SkipBatches, tiles_per_query
from ..nn import distributed
from ..nn.device import autocast, to_device, use_channels_last
from ..nn.model import TwoBranchNet
from ..spec import RunSpec
from .loop import LossMonitor, Stage, step, train_epochs, trainable
from .resume import Checkpointer


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
            term.attach(model)

    def forward(self, z_ground: torch.Tensor, z_aerial: torch.Tensor, ground: torch.Tensor,
                aerial: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted total, each term's detached value), all on the device: nothing here waits for the GPU."""
        total = z_ground.new_zeros(())
        parts = {}
        gathered: tuple[torch.Tensor, torch.Tensor] | None = None
        for name, weight, term in zip(self.names, self.weights, self.terms):
            if term.needs_images:
                value = term(z_ground, z_aerial, ground, aerial)
            else:
                if gathered is None:
                    gathered = distributed.gather_with_grad(z_ground), distributed.gather_with_grad(z_aerial)
                value = term(*gathered)
            parts[name] = value.detach()
            total = total + weight * value
        return total, parts

    def after_step(self) -> None:
        for term in self.terms:
            term.after_step()


class FinetuneForward(nn.Module):
    """One forward pass of fine-tuning: both branches, then the objective -> (loss, parts).

    A single module so that DistributedDataParallel sees every trainable
    parameter (the network's and any loss's) in one ``forward``.
    """

    def __init__(self, model: TwoBranchNet, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, ground: torch.Tensor, aerial: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z_ground, z_aerial = self.model.embed("ground", ground), self.model.embed("aerial", aerial)
        return self.objective(z_ground, z_aerial, ground, aerial)


EpochCallback = Callable[[int, dict[str, float]], None]
STAGE = "finetune"


def finetune_step(forward: nn.Module, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                  ground: torch.Tensor, aerial: torch.Tensor, device: torch.device,
                  monitor: LossMonitor | None = None, where: tuple[int, int] = (0, 0),
                  grad_clip: float | None = None, channels_last: bool = False) -> torch.Tensor:
    """One fine-tuning step on a batch of [0, 1] image pairs; returns the loss (a device tensor).

    ``forward`` is a :class:`FinetuneForward` (or its DDP wrapper). The
    ``monitor`` sees the loss and its parts and raises, naming ``where``
    (epoch, batch), if it is not finite; without one nothing is checked.
    """
    ground = normalize(to_device(ground, device, channels_last))
    aerial = normalize(to_device(aerial, device, channels_last))
    with autocast(device):
        loss, parts = forward(ground, aerial)
    if monitor is not None and monitor.add(where, loss, parts):
        monitor.flush()
    step(optimizer, loss, params, grad_clip)
    distributed.unwrap(forward).objective.after_step()
    return loss


def finetune(model: TwoBranchNet, objective: Objective, pairs: CrossViewPairs, indices: Sequence[int],
             spec: RunSpec, device: torch.device, generator: torch.Generator, progress: Progress | None,
             augment: PairTransform | None, on_epoch_end: EpochCallback, checkpointer: Checkpointer | None = None,
             run_state: Callable[[], dict[str, Any]] = dict) -> float:
    """Train ``model`` for ``spec.epochs`` on the pairs ``indices``; returns the seconds spent training.

    ``spec.batch_size`` is the global batch: under ``torchrun`` each rank
    trains on its share of it. With a ``checkpointer`` the training state is
    saved before the first epoch, after every epoch (after ``on_epoch_end``)
    and on SIGINT/SIGTERM; ``run_state()`` adds the run's own part (model,
    records). A resumed run continues from the saved epoch and batch.
    """
    indices = np.asarray(indices)
    dataset = Pairs(pairs.ground, pairs.aerial, pairs.positives, indices, readers(spec), augment)
    semi = pairs.semi_positives[indices] if pairs.semi_positives is not None else None
    sampler = ConflictFreeBatchSampler(tiles_per_query(pairs.positives[indices], semi),
                                       min(spec.batch_size, len(dataset)), generator)
    batches = SkipBatches(ShardedBatchSampler(sampler) if distributed.active() else sampler)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=spec.workers,
                        pin_memory=device.type == "cuda")
    objective.to(device).attach(model)
    forward = distributed.wrap(FinetuneForward(model, objective), device)
    params = trainable(model, objective)
    optimizer = torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    channels_last = use_channels_last(device, spec.channels_last)
    monitor = LossMonitor.for_device("fine-tuning", device)

    def one_step(batch: Sequence[torch.Tensor], where: tuple[int, int]) -> None:
        ground, aerial = batch
        finetune_step(forward, optimizer, params, ground, aerial, device, monitor, where, spec.grad_clip,
                      channels_last)

    def finish(epoch: int, means: dict[str, float], seconds: float) -> None:
        means = dict(means)
        on_epoch_end(epoch, {"loss": means.pop("loss", float("nan")), **{f"loss_{n}": v for n, v in means.items()},
                             "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds})

    resume = checkpointer.resume_point(STAGE) if checkpointer is not None else None
    return train_epochs(Stage(STAGE, "fine-tuning", "fine-tune", spec.epochs, loader, one_step, monitor,
                              {"objective": objective, "optimizer": optimizer}, device,
                              prepare=lambda epoch: model.train(), finish=finish),
                        generator, progress, checkpointer, resume, run_state)
