"""What a training stage records about the machine: how long its steps waited for data, and its peak GPU memory.

``data_wait_fraction`` is the time the step loop spent blocked on the data
loader over the stage's time in this process: near 0 the loader keeps up,
near 1 the device idles for want of images (more ``--workers``, or
``--gpu-decode`` for JPEG datasets). ``peak_gpu_memory_bytes`` is
``torch.cuda.max_memory_allocated`` over the stage (the counter is reset when
the stage starts); ``None`` off CUDA.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader


class TimedLoader:
    """A DataLoader that adds the seconds its consumer waited for each batch to :attr:`waited`.

    It offers what the epoch loop uses of a DataLoader (``batch_sampler``,
    ``len``, iteration), so a stage hands it over in the loader's place.
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.waited = 0.0

    @property
    def batch_sampler(self) -> Any:
        return self.loader.batch_sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> "TimedIterator":
        return TimedIterator(iter(self.loader), self)  # made now, as the loader's: the resume order of RNG draws


class TimedIterator:
    """One pass over a :class:`TimedLoader`, timing each ``next``."""

    def __init__(self, iterator: Iterator[Any], owner: TimedLoader) -> None:
        self.iterator = iterator
        self.owner = owner

    def __iter__(self) -> "TimedIterator":
        return self

    def __next__(self) -> Any:
        started = time.perf_counter()
        try:
            return next(self.iterator)
        finally:
            self.owner.waited += time.perf_counter() - started


class StageMeter:
    """Measures one stage: create it when the stage starts, :meth:`wrap` its loader, read :meth:`record` at the end."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.started = time.perf_counter()
        self.loader: TimedLoader | None = None

    def wrap(self, loader: DataLoader) -> TimedLoader:
        self.loader = TimedLoader(loader)
        return self.loader

    def record(self) -> dict[str, Any]:
        """``data_wait_s``, ``data_wait_fraction`` and ``peak_gpu_memory_bytes`` of the stage so far."""
        seconds = time.perf_counter() - self.started
        waited = self.loader.waited if self.loader is not None else 0.0
        peak = int(torch.cuda.max_memory_allocated(self.device)) if self.cuda else None
        return {"data_wait_s": waited, "data_wait_fraction": waited / seconds if seconds > 0 else 0.0,
                "peak_gpu_memory_bytes": peak}
