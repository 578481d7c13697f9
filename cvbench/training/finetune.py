"""Stage 2: cross-view fine-tuning of the two-branch network (thesis section 3.2).

The objective is the weighted sum of the ``--loss`` terms (eq 3.10), each
getting the L2-normalised ground and aerial embeddings of a batch of pairs.
Adam, as in section 4.2 (AdamW, a milestone or cosine schedule by option);
the batches come from the ``--sampler`` plugin. A loss may use the three optional parts that
:class:`cvbench.Loss` declares: ``attach(model)`` (called once),
``needs_images`` (also receives the two image batches) and ``after_step()``
(called after each optimiser step).

Under ``torchrun`` each rank holds a share of every batch; the objective
gathers the embeddings of all ranks with their gradient, so each loss sees the
whole batch (a loss with ``needs_images`` gets this rank's share, with its own
images).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from ..contract import Batching
from ..contract.registry import create
from ..data import CrossViewPairs
from ..errors import SpecError
from ..data.gpu_decode import jpeg_only, wanted
from ..data.loaders import EncodedPairs, Pairs, PairTransform, collate_encoded, normalize, readers
from ..data.sampling import EpochBatches, ShardedBatchSampler, SkipBatches, tiles_per_query
from ..evaluation.evaluate import embed
from ..nn import distributed
from ..nn.device import autocast, to_device, use_channels_last
from ..nn.model import TwoBranchNet
from ..spec import RunSpec
from .loop import LossMonitor, Stage, step, train_epochs, trainable
from .resume import Checkpointer
from .stage_stats import StageMeter


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
             run_state: Callable[[], dict[str, Any]] = dict,
             on_step: Callable[[int, dict[str, float]], None] | None = None) -> "Trained":
    """Train ``model`` for ``spec.epochs`` on the pairs ``indices``; returns the seconds spent training and mining.

    ``spec.batch_size`` is the global batch: under ``torchrun`` each rank
    trains on its share of it. With a ``checkpointer`` the training state is
    saved before the first epoch, after every epoch (after ``on_epoch_end``)
    and on SIGINT/SIGTERM; ``run_state()`` adds the run's own part (model,
    records). A resumed run continues from the saved epoch and batch.
    ``--epochs 0`` trains nothing: the start weights are the model (zero-shot).
    ``on_step(step, {"loss": total, term: value, ...})`` receives every
    step's losses (the experiment trackers').
    """
    if spec.epochs == 0:
        return Trained(0.0, None)
    indices = np.asarray(indices)
    decode = wanted(spec.gpu_decode, device) and not spec.polar and jpeg_only(pairs.ground, indices) \
        and jpeg_only(pairs.aerial, pairs.positives[indices])
    kind = EncodedPairs if decode else Pairs
    dataset = kind(pairs.ground, pairs.aerial, pairs.positives, indices, readers(spec), augment)
    plan = EpochBatches(create("sampler", spec.sampler, **spec.sampler_options), spec.sampler,
                        batching_of(model, pairs, indices, spec, device, generator), generator, len(dataset),
                        min(spec.batch_size, len(dataset)))
    batches = SkipBatches(ShardedBatchSampler(plan) if distributed.active() else plan)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=spec.workers,
                        pin_memory=device.type == "cuda", collate_fn=collate_encoded if decode else None)
    objective.to(device).attach(model)
    forward = distributed.wrap(FinetuneForward(model, objective), device)
    params = trainable(model, objective)
    if not params:
        raise SpecError(f"--epochs {spec.epochs}: nothing to train, since --freeze-backbone keeps the backbone and "
                        f"head {spec.head!r} with options {spec.head_options} has no parameters; use --epochs 0 "
                        "for a zero-shot evaluation, or give the head parameters (e.g. gem project=true)")
    optimizer = make_optimizer(spec, params)
    schedule = LearningRate(spec)
    channels_last = use_channels_last(device, spec.channels_last)
    monitor = LossMonitor.for_device("fine-tuning", device)
    monitor.on_step = on_step

    def prepare(epoch: int) -> None:
        plan.prepare(epoch)
        model.train()

    def one_step(batch: Sequence[torch.Tensor], where: tuple[int, int]) -> None:
        ground, aerial = batch
        if decode:
            ground, aerial = dataset.on_device(ground, aerial, device)
        schedule.set(optimizer, where, len(plan))
        finetune_step(forward, optimizer, params, ground, aerial, device, monitor, where, spec.grad_clip,
                      channels_last)

    def finish(epoch: int, means: dict[str, float], seconds: float) -> None:
        means = dict(means)
        row = {"loss": means.pop("loss", float("nan")), **{f"loss_{n}": v for n, v in means.items()},
               "lr": optimizer.param_groups[0]["lr"], "train_seconds": seconds}
        if plan.sampler.mines:
            row["mining_seconds"] = plan.seconds
        on_epoch_end(epoch, row)

    resume = checkpointer.resume_point(STAGE) if checkpointer is not None else None
    meter = StageMeter(device)
    seconds = train_epochs(Stage(STAGE, "fine-tuning", "fine-tune", spec.epochs, meter.wrap(loader), one_step, monitor,
                                 {"objective": objective, "optimizer": optimizer, "batches": plan}, device,
                                 prepare=prepare, finish=finish),
                           generator, progress, checkpointer, resume, run_state)
    return Trained(seconds, plan.seconds if plan.sampler.mines else None, {**meter.record(), "gpu_decode": decode})


@dataclass(frozen=True)
class Trained:
    """What fine-tuning took: seconds training (mining included) and, for a mining sampler, seconds mining.

    ``machine`` holds :class:`cvbench.training.stage_stats.StageMeter`'s record (data wait, peak GPU memory)
    and whether the JPEG files were decoded on the device.
    """

    seconds: float
    mining_seconds: float | None
    machine: dict[str, Any] = dataclasses.field(default_factory=dict)


def check_sampler(spec: RunSpec, pairs: CrossViewPairs, indices: Sequence[int]) -> None:
    """Build the ``--sampler`` and let it refuse what the training pairs cannot honour, before any compute."""

    def no_model() -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("Sampler.check: embed() reads the model, which does not exist yet; call it in plan()")

    if spec.epochs == 0:
        return
    sampler = create("sampler", spec.sampler, **spec.sampler_options)
    batching = batching_of(None, pairs, np.asarray(indices), spec, torch.device("cpu"), torch.Generator())(1)
    sampler.check(dataclasses.replace(batching, embed=no_model))


def batching_of(model: TwoBranchNet | None, pairs: CrossViewPairs, indices: np.ndarray, spec: RunSpec,
                device: torch.device, generator: torch.Generator) -> Callable[[int], Batching]:
    """``epoch -> Batching``: what a sampler plans from, with ``embed`` reading the model as it is then."""
    semi = pairs.semi_positives[indices] if pairs.semi_positives is not None else None
    conflicts = tiles_per_query(pairs.positives[indices], semi)
    meta = pairs.ground_meta.iloc[indices].reset_index(drop=True) if len(pairs.ground_meta.columns) else \
        pairs.ground_meta
    views = readers(spec)

    used = np.unique(pairs.positives[indices])  # only these tiles can bring a training pair into a batch

    def embed_now() -> tuple[np.ndarray, np.ndarray]:
        queries = embed(model, "ground", pairs.ground, views["ground"], device, spec.eval_batch_size, indices)
        tiles = embed(model, "aerial", pairs.aerial, views["aerial"], device, spec.eval_batch_size, used)
        gallery = np.zeros((len(pairs.aerial), tiles.shape[1]), dtype=np.float32)
        gallery[used] = tiles
        return queries, gallery

    def batching(epoch: int) -> Batching:
        return Batching(conflicts, pairs.positives[indices], meta, min(spec.batch_size, len(indices)), epoch,
                        generator, embed_now)

    return batching


def make_optimizer(spec: RunSpec, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam (the thesis' section 4.2) or AdamW (decoupled weight decay, Sample4Geo's), at the peak lr."""
    kind = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=spec.lr, weight_decay=spec.weight_decay)


class LearningRate:
    """The fine-tuning lr at each step, a function of the position alone, so a resumed run follows it exactly.

    ``constant``: the peak lr. ``milestones``: x0.1 from each milestone epoch
    on. ``cosine``: linear warm-up from 0 over ``warmup_epochs``, then
    half a cosine down to 0 at the end of the last epoch, by step (an
    epoch's position is its batch over the epoch's planned batches).
    """

    def __init__(self, spec: RunSpec) -> None:
        self.peak = spec.lr
        self.kind = spec.schedule
        self.milestones = sorted(int(m) for m in spec.milestones)
        self.epochs = spec.epochs
        self.warmup = float(spec.warmup_epochs)

    def factor(self, epoch: int, batch: int, batches: int) -> float:
        """The lr factor at batch ``batch`` (from 1) of ``batches`` in ``epoch`` (from 1)."""
        if self.kind == "milestones":
            return 0.1 ** sum(epoch >= milestone for milestone in self.milestones)
        if self.kind != "cosine":
            return 1.0
        done = (epoch - 1) + (batch - 1) / max(batches, 1)  # epochs completed before this step
        if done < self.warmup:
            return min((done + 1.0 / max(batches, 1)) / self.warmup, 1.0)  # the first step already warms a little
        progress = (done - self.warmup) / max(self.epochs - self.warmup, 1e-12)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def set(self, optimizer: torch.optim.Optimizer, where: tuple[int, int], batches: int) -> None:
        value = self.peak * self.factor(*where, batches)
        for group in optimizer.param_groups:
            group["lr"] = value
