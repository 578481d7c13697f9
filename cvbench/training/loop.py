"""What both training stages share: the epoch loop, optimiser steps, and loss checks that keep the GPU busy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from ..errors import TrainingDivergedError
from .resume import Checkpointer, begin_epoch, interrupted, restore_rng, rng_state


class LossMonitor:
    """Sums a stage's losses on the device and refuses a NaN or infinite one, naming where it broke.

    Reading a loss on the host (``float(loss)``) waits for the GPU to finish
    the step. The monitor keeps each step's losses as device tensors and reads
    them every ``every`` steps (:meth:`flush`): on CUDA the step never
    synchronises; on the CPU ``every=1`` costs nothing and stops before the
    optimiser takes a bad step. Either way :meth:`flush` names the first
    non-finite step by its epoch and batch. ``on_step(step, {"loss": ...,
    part: ...})``, where set, gets each flushed step's values with the step's
    number in the stage (from 1, continued by a resumed run): the experiment
    trackers' per-step losses, read without an extra synchronisation.
    """

    def __init__(self, stage: str, every: int = 1) -> None:
        self.stage = stage
        self.every = max(int(every), 1)
        self.pending: list[tuple[tuple[int, int], torch.Tensor]] = []
        self.sums: dict[str, float] = {}
        self.names = ["loss"]
        self.count = 0
        self.steps = 0
        self.on_step: Callable[[int, dict[str, float]], None] | None = None

    @classmethod
    def for_device(cls, stage: str, device: torch.device) -> "LossMonitor":
        """Check every step on the CPU, every 25 steps where the device runs ahead of the host."""
        return cls(stage, 1 if device.type == "cpu" else 25)

    def add(self, where: tuple[int, int], loss: torch.Tensor, parts: dict[str, torch.Tensor] | None = None) -> bool:
        """Record one step's loss (and its named parts); True when it is time to :meth:`flush`."""
        values = [loss.detach().float().reshape(())]
        values += [part.detach().float().reshape(()) for part in (parts or {}).values()]
        self.names = ["loss", *(parts or {})]
        self.pending.append((where, torch.stack(values)))
        return len(self.pending) >= self.every

    def flush(self) -> None:
        """Read the pending losses (one host synchronisation); raise on the first non-finite one."""
        if not self.pending:
            return
        values = torch.stack([value for _, value in self.pending]).cpu().double()
        finite = torch.isfinite(values[:, 0])
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            epoch, batch = self.pending[first][0]
            raise TrainingDivergedError(
                f"{self.stage}: the loss became {float(values[first, 0])} at epoch {epoch}, batch {batch}. Lower the "
                "learning rate, set --grad-clip, or check the inputs; the last good checkpoint is kept.")
        for name, total in zip(self.names, values.sum(0).tolist()):
            self.sums[name] = self.sums.get(name, 0.0) + total
        for row in values.tolist():
            self.steps += 1
            if self.on_step is not None:
                self.on_step(self.steps, dict(zip(self.names, row)))
        self.count += len(self.pending)
        self.pending.clear()

    def means(self) -> dict[str, float]:
        """Mean of each recorded value over the flushed steps, after a final :meth:`flush`."""
        self.flush()
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}

    def state(self) -> dict[str, object]:
        """The epoch's sums so far (flushing first), to save with a mid-epoch checkpoint."""
        self.flush()
        return {"sums": dict(self.sums), "count": self.count, "names": list(self.names), "steps": self.steps}

    def load(self, state: dict[str, object]) -> None:
        """Continue an epoch from :meth:`state`."""
        self.pending.clear()
        self.sums, self.count, self.names = dict(state["sums"]), int(state["count"]), list(state["names"])

    def reset(self) -> None:
        """Start a new epoch's sums (flushing what is pending first)."""
        self.flush()
        self.sums, self.count = {}, 0


def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters: list[nn.Parameter],
         grad_clip: float | None = None) -> None:
    """Backward, optional gradient-norm clipping, optimiser step; no host synchronisation."""
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


T = TypeVar("T")


def one_thread_each(batches: Iterator[T]) -> Iterator[T]:
    """``batches``, each fetched with one intra-op CPU thread (the step keeps them all).

    Loading in the main process (``--workers 0``) runs thousands of tiny
    tensor operations per batch (MoCov2's crops, colour jitter and blur of
    64 px tiles), each too small to be split among threads: one thread
    computes the same bits (tests/test_expected_time.py), while with more the
    idle OpenMP threads spin between them and take the cores from the one
    working. A loaded 2-core CPU took 10-30x longer per pre-training batch
    (docs/performance.md, "A first run"). Workers already use one thread.
    """
    while True:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            batch = next(batches)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(threads)
        yield batch


@dataclass
class Stage:
    """What a training stage hands :func:`train_epochs`: its data, its step and its resumable parts.

    ``loader``'s batch sampler is a :class:`cvbench.data.sampling.SkipBatches`, so
    a resumed epoch leaves out the batches already done. ``parts`` are the
    objects whose ``state_dict`` the saved state holds (the pretrainer or the
    objective, the optimiser, a scheduler), under their names. ``prepare``
    runs before each epoch's batches are drawn, ``finish`` after its last
    step with the epoch's mean losses and the stage's training seconds so
    far; ``extra`` adds the stage's own values to every saved state.
    """

    key: str
    what: str
    label: str
    epochs: int
    loader: DataLoader
    step: Callable[[Sequence[torch.Tensor], tuple[int, int]], None]
    monitor: LossMonitor
    parts: dict[str, Any]
    device: torch.device
    prepare: Callable[[int], None] = lambda epoch: None
    finish: Callable[[int, dict[str, float], float], None] = lambda epoch, means, seconds: None
    extra: Callable[[], dict[str, Any]] = dict


def train_epochs(stage: Stage, generator: torch.Generator, progress: Progress | None,
                 checkpointer: Checkpointer | None, resume: dict[str, Any] | None,
                 run_state: Callable[[], dict[str, Any]] = dict) -> float:
    """The epoch / resume / stop loop both training stages share; returns the seconds spent training.

    With a ``checkpointer`` the state is saved when the stage starts, after
    every epoch and on SIGINT/SIGTERM (then :class:`RunInterrupted` is
    raised); ``run_state()`` adds the run's part (model, records). ``resume``
    (the state the run stopped in, inside this stage) restores the parts and
    continues at the saved epoch and batch with the same data order and
    random draws, so a resumed stage ends with the numbers of an
    uninterrupted one.
    """
    first, seconds = 1, 0.0
    if resume is not None:
        for name, part in stage.parts.items():
            if name in resume:  # a state saved before the part existed: it starts afresh
                part.load_state_dict(resume[name])
        first, seconds = resume["epoch"] + 1, resume["train_seconds"]
        stage.monitor.steps = int(resume["monitor"].get("steps", 0)) if "monitor" in resume else 0

    def state(epoch: int, batch: int, epoch_generator: torch.Tensor) -> dict[str, Any]:
        return {**run_state(), "stage": stage.key, "epoch": epoch, "batch": batch, "epoch_generator": epoch_generator,
                "rng": rng_state(), **{name: part.state_dict() for name, part in stage.parts.items()},
                "monitor": stage.monitor.state(), "train_seconds": seconds, **stage.extra()}

    if checkpointer is not None and resume is None:
        checkpointer.save(state(first - 1, 0, generator.get_state()))
    task = progress.add_task(stage.label, total=None, info="") if progress is not None else None
    done = 0
    batches = stage.loader.batch_sampler
    for epoch in range(first, stage.epochs + 1):
        skip = begin_epoch(resume, epoch, first, generator, stage.monitor)
        epoch_generator = generator.get_state()
        batches.skip = skip
        stage.prepare(epoch)
        if progress is not None:  # conflict-free batching knows an epoch's count only once it is drawn
            progress.update(task, total=done + len(stage.loader) * (stage.epochs - epoch + 1))
        started = time.perf_counter()
        iterator = iter(stage.loader)
        if stage.device.type == "cpu":
            iterator = one_thread_each(iterator)
        if skip:  # saved mid-epoch, after this epoch's loader was created
            restore_rng(resume["rng"])
        for batch, items in enumerate(iterator, start=skip + 1):
            stage.step(items, (epoch, batch))
            done += 1
            if progress is not None:
                monitor = stage.monitor
                loss = f" loss {monitor.sums['loss'] / monitor.count:.4f}" if monitor.count else ""
                progress.update(task, advance=1, info=f"epoch {epoch}/{stage.epochs}{loss}")
            if checkpointer is not None and checkpointer.stop.requested(batch, stage.device):
                seconds += time.perf_counter() - started
                checkpointer.save(state(epoch - 1, batch, epoch_generator))
                raise interrupted(stage.what, epoch, batch)
        means = stage.monitor.means()
        seconds += time.perf_counter() - started
        stage.finish(epoch, means, seconds)
        if checkpointer is not None:
            checkpointer.save(state(epoch, 0, generator.get_state()))
            if checkpointer.stop.requested(0, stage.device):
                raise interrupted(stage.what, epoch)
    return seconds
