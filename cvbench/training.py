"""What both training stages share: optimiser steps, and loss checks that keep the GPU busy."""

from __future__ import annotations

import torch
from torch import nn

from .errors import TrainingDivergedError


class LossMonitor:
    """Sums a stage's losses on the device and refuses a NaN or infinite one, naming where it broke.

    Reading a loss on the host (``float(loss)``) waits for the GPU to finish
    the step. The monitor keeps each step's losses as device tensors and reads
    them every ``every`` steps (:meth:`flush`): on CUDA the step never
    synchronises; on the CPU ``every=1`` costs nothing and stops before the
    optimiser takes a bad step. Either way :meth:`flush` names the first
    non-finite step by its epoch and batch.
    """

    def __init__(self, stage: str, every: int = 1) -> None:
        self.stage = stage
        self.every = max(int(every), 1)
        self.pending: list[tuple[tuple[int, int], torch.Tensor]] = []
        self.sums: dict[str, float] = {}
        self.names = ["loss"]
        self.count = 0

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
        self.count += len(self.pending)
        self.pending.clear()

    def means(self) -> dict[str, float]:
        """Mean of each recorded value over the flushed steps, after a final :meth:`flush`."""
        self.flush()
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}

    def state(self) -> dict[str, object]:
        """The epoch's sums so far (flushing first), to save with a mid-epoch checkpoint."""
        self.flush()
        return {"sums": dict(self.sums), "count": self.count, "names": list(self.names)}

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
