"""Stage 2: cross-view fine-tuning of the two-branch network (thesis section 3.2).

The objective is the weighted sum of the ``--loss`` terms (eq 3.10), each
getting the L2-normalised ground and aerial embeddings of a batch of pairs.
Adam, as in section 4.2. A loss may opt into three extensions: ``attach(model)``
(called once), ``needs_images = True`` (also receives the two image batches)
and ``after_step()`` (called after each optimiser step); see docs/plugins.md.

Under ``torchrun`` each rank holds a share of every batch; the objective
gathers the embeddings of all ranks with their gradient, so each loss sees the
whole batch (a loss with ``needs_images`` gets this rank's share, with its own
images).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from . import distributed
from .data import CrossViewPairs
from .device import autocast, to_device, use_channels_last
from .loaders import PairTransform, Pairs, normalize, readers
from .model import TwoBranchNet
from .registry import create
from .sampling import ConflictFreeBatchSampler, ShardedBatchSampler, SkipBatches, tiles_per_query
from .spec import RunSpec
from .trainstate import Checkpointer, begin_epoch, interrupted, restore_rng, rng_state
from .training import LossMonitor, step, trainable


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
                aerial: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted total, each term's detached value), all on the device: nothing here waits for the GPU."""
        total = z_ground.new_zeros(())
        parts = {}
        gathered: tuple[torch.Tensor, torch.Tensor] | None = None
        for name, weight, term in zip(self.names, self.weights, self.terms):
            if getattr(term, "needs_images", False):
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
            if hasattr(term, "after_step"):
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
    getattr(forward, "module", forward).objective.after_step()
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
    resume = checkpointer.resume_point(STAGE) if checkpointer is not None else None
    first, seconds = 1, 0.0
    if resume is not None:
        objective.load_state_dict(resume["objective"])
        optimizer.load_state_dict(resume["optimizer"])
        first, seconds = resume["epoch"] + 1, resume["train_seconds"]

    def state(epoch: int, batch: int, epoch_generator: torch.Tensor) -> dict[str, Any]:
        return {**run_state(), "stage": STAGE, "epoch": epoch, "batch": batch, "epoch_generator": epoch_generator,
                "rng": rng_state(), "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                "monitor": monitor.state(), "train_seconds": seconds}

    if checkpointer is not None and resume is None:
        checkpointer.save(state(0, 0, generator.get_state()))
    task = progress.add_task("fine-tune", total=spec.epochs * len(loader), info="") if progress else None
    done = 0
    for epoch in range(first, spec.epochs + 1):
        skip = begin_epoch(resume, epoch, first, generator, monitor)
        if resume is not None and epoch == first:
            sampler.discard_plan()  # drawn (for the progress total) before the generator was reset
        epoch_generator = generator.get_state()
        batches.skip = skip
        if progress is not None:  # conflict-free batching makes each epoch's count exact only once drawn
            progress.update(task, total=done + len(loader) * (spec.epochs - epoch + 1))
        started = time.perf_counter()
        model.train()
        iterator = iter(loader)
        if skip:  # saved mid-epoch, after this epoch's loader was created
            restore_rng(resume["rng"])
        for batch, (ground, aerial) in enumerate(iterator, start=skip + 1):
            finetune_step(forward, optimizer, params, ground, aerial, device, monitor, (epoch, batch),
                          spec.grad_clip, channels_last)
            done += 1
            if progress is not None:
                info = f"epoch {epoch}/{spec.epochs} loss {monitor.sums['loss'] / monitor.count:.4f}" \
                    if monitor.count else f"epoch {epoch}/{spec.epochs}"
                progress.update(task, advance=1, info=info)
            if checkpointer is not None and checkpointer.stop.requested(batch, device):
                seconds += time.perf_counter() - started
                checkpointer.save(state(epoch - 1, batch, epoch_generator))
                raise interrupted("fine-tuning", epoch, batch)
        means = monitor.means()
        seconds += time.perf_counter() - started
        stats = {"loss": means.pop("loss", float("nan")), **{f"loss_{n}": v for n, v in means.items()},
                 "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds}
        on_epoch_end(epoch, stats)
        if checkpointer is not None:
            checkpointer.save(state(epoch, 0, generator.get_state()))
            if epoch < spec.epochs and checkpointer.stop.requested(0, device):
                raise interrupted("fine-tuning", epoch)
    return seconds
