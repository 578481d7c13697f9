"""What one run carries from stage to stage: the record's fields, the evaluations so far, and the clock.

A run's stages (pre-training each branch, fine-tuning with its evaluations)
add to one :class:`RunState`; the final ``result.json`` is built from it,
and so is the run's part of every saved training state
(:meth:`RunState.snapshot`), which :meth:`RunState.resumed` reads back for
``--resume``. The keys of a saved state are those of
:mod:`cvbench.training.resume`'s format, so states saved before this type
existed resume unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..spec import RunSpec
from .records import RunRecorder


@dataclass
class RunState:
    """One run's state between its stages.

    ``fields`` are the record's own fields (``split``, ``device``,
    ``processes``, ``pretraining``, ``timings`` and, once fine-tuned,
    ``metrics`` and ``uniformity``); ``evaluations`` maps an epoch to what
    evaluating there gave, and ``eval_seconds`` is their total time.
    """

    spec: RunSpec
    model: nn.Module
    recorder: RunRecorder
    fields: dict[str, Any]
    evaluations: dict[int, dict[str, Any]] = field(default_factory=dict)
    eval_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def fresh(cls, spec: RunSpec, model: nn.Module, recorder: RunRecorder, split: str) -> "RunState":
        """The state of a run that starts now."""
        return cls(spec, model, recorder, {"split": split, "pretraining": {}})

    @classmethod
    def resumed(cls, spec: RunSpec, model: nn.Module, recorder: RunRecorder, saved: dict[str, Any]) -> "RunState":
        """The state a saved training state holds; its clock continues from the saved elapsed time."""
        evaluations = {int(epoch): value for epoch, value in saved.get("evaluations", {}).items()}
        return cls(spec, model, recorder, dict(saved["fields"]), evaluations, float(saved.get("eval_seconds", 0.0)),
                   time.perf_counter() - float(saved.get("elapsed", 0.0)))

    def elapsed(self) -> float:
        """Seconds the run has worked, counting the time before an interruption."""
        return time.perf_counter() - self.started

    def snapshot(self) -> dict[str, Any]:
        """The run's part of a saved training state (the training loops add their own)."""
        return {"spec": self.spec.to_dict(), "model": self.model.state_dict(), "fields": self.fields,
                "rows": self.recorder.rows, "elapsed": self.elapsed(), "evaluations": self.evaluations,
                "eval_seconds": self.eval_seconds}

    def add_timing(self, name: str, seconds: float) -> None:
        """Record one stage's seconds under ``timings`` (``pretrain_s``, ``finetune_s``, ``eval_s``, ``total_s``)."""
        self.fields.setdefault("timings", {})[name] = seconds

    def write(self, status: str, **extra: Any) -> dict[str, Any]:
        """Replace ``result.json`` with the record so far, under ``status``."""
        return self.recorder.write_result(status, **self.fields, **extra)
