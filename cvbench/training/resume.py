"""What a run needs to continue after an interruption: ``checkpoints/state.pt``.

The pipeline's stages run in a fixed order (:data:`STAGES`). At the start of
fine-tuning, at the end of every epoch of each stage, and when the process is
asked to stop (SIGINT or SIGTERM), the run saves one file holding:

- the stage, the epochs it completed and the batches done in the current one;
- the two-branch model, and the stage's optimiser (and scheduler), pretrainer
  (momentum encoders, MoCo queue) or fine-tuning objective (loss queues);
- the data order: the generator state at the start of the current epoch, so
  the resumed epoch draws the same batches and skips the ones done;
- every random number generator (Python, NumPy, torch, CUDA);
- what the record needs: the epochs' metrics rows, evaluations, timings.

The file is written atomically and read with ``weights_only=True`` (plain
tensors and containers, no arbitrary pickled objects). SIGKILL cannot be
caught: a run killed so resumes from its last saved state, and because every
random draw is restored, on the CPU with ``--workers 0`` it ends with the same
numbers as a run never interrupted.
"""

from __future__ import annotations

import random
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import CvbenchError
from ..nn import distributed

STATE = "state.pt"
STATE_VERSION = 1
STAGES = ("pretrain:ground", "pretrain:aerial", "finetune")
AGREE_EVERY = 25
"""Steps between the ranks' agreement on a stop request (a collective that waits for the GPU)."""


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on SIGINT/SIGTERM after saving its state; ``cvbench run --resume`` continues it."""


def rng_state() -> dict[str, Any]:
    """Every global random state, as tensors and plain containers."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` saved."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def random_state_kept() -> Iterator[None]:
    """Run the block, then put every global random state back (:func:`rng_state`), raised or not."""
    saved = rng_state()
    try:
        yield
    finally:
        restore_rng(saved)


def load_state(path: Path) -> dict[str, Any]:
    """A saved training state, or a :class:`CvbenchError` saying why it cannot be used."""
    if not path.is_file():
        raise CvbenchError(f"{path.parent.parent} has no {path.parent.name}/{STATE}: the run stopped before its first "
                           "checkpoint, so there is nothing to resume (start it again)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CvbenchError(f"cannot read the training state {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or state.get("stage") not in STAGES:
        raise CvbenchError(f"{path} is not a cvbench training state of version {STATE_VERSION}")
    return state


class StopRequest:
    """SIGINT/SIGTERM set a flag the training loops read between steps, so they can save and stop cleanly.

    A second SIGINT stops at once (KeyboardInterrupt), for a user who does not
    want to wait for the step to finish. Outside the main thread (where Python
    cannot install handlers) the request is never set.
    """

    def __init__(self) -> None:
        self.signal: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    @contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def requested(self, step: int = 0, device: torch.device | None = None) -> bool:
        """Whether to stop after the ``step``-th step of an epoch.

        Under ``torchrun`` the ranks agree (one collective every
        :data:`AGREE_EVERY` steps, on ``device``), so all stop at the same
        step when one was signalled.
        """
        if not distributed.active():
            return self.signal is not None
        if step % AGREE_EVERY:
            return False
        flag = torch.tensor([1.0 if self.signal is not None else 0.0], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())


class Checkpointer:
    """Saves a run's training state and hands a resumed run the state of the stage it stopped in."""

    def __init__(self, path: Path, resumed: dict[str, Any] | None = None, write: bool = True) -> None:
        self.path = Path(path)
        self.resumed = resumed
        self.handed_out = False
        self.write = write
        self.stop = StopRequest()

    def stage_done(self, stage: str) -> bool:
        """True when the resumed run had already finished ``stage``."""
        return self.resumed is not None and STAGES.index(stage) < STAGES.index(self.resumed["stage"])

    def resumes(self, stage: str) -> bool:
        """True when the run stopped inside ``stage`` and the stage has not picked its state up yet."""
        return self.resumed is not None and self.resumed["stage"] == stage and not self.handed_out

    def resume_point(self, stage: str) -> dict[str, Any] | None:
        """The saved state if the run stopped inside ``stage``; handed out once."""
        if not self.resumes(stage):
            return None
        self.handed_out = True
        return self.resumed

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (plus version) atomically; rank 0 only."""
        if not self.write:
            return
        with atomic_path(self.path) as tmp:
            torch.save({"version": STATE_VERSION, **state}, tmp)


def begin_epoch(resume: dict[str, Any] | None, epoch: int, first: int, generator: torch.Generator,
                monitor: Any) -> int:
    """Prepare ``epoch``'s data order and loss sums; returns the batches a resumed epoch has already done.

    The first epoch of a resumed stage gets back the generator state the
    epoch started with (so it draws the same batches) and, when it stopped
    mid-epoch, its loss sums. A state saved at an epoch's end also restores
    the RNG here, before the epoch draws anything; a mid-epoch one is restored
    by the caller once the epoch's loader exists (:func:`restore_rng`), as the
    loader's creation draws from it.
    """
    if resume is None or epoch != first:
        monitor.reset()
        return 0
    generator.set_state(resume["epoch_generator"])
    skip = int(resume["batch"])
    if skip:
        monitor.load(resume["monitor"])
    else:
        monitor.reset()
        restore_rng(resume["rng"])
    return skip


def interrupted(stage: str, epoch: int, batch: int | None = None) -> RunInterrupted:
    """The exception a loop raises after saving its state on a stop request (``batch`` None: at the epoch's end)."""
    where = f"epoch {epoch}, batch {batch}" if batch is not None else f"the end of epoch {epoch}"
    return RunInterrupted(f"{stage}: stopped at {where} on request; the state is saved")
