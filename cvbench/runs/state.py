"""What one run carries from stage to stage: the record's fields, the evaluations so far, and the clock.

A run's stages (pre-training each branch, fine-tuning with its evaluations)
add to one :class:`RunState`; the final ``result.json`` is built from it
(:meth:`RunState.record_fields`), and so is the run's part of every saved
training state (:meth:`RunState.snapshot`), which :meth:`RunState.resumed`
reads back for ``--resume``. A saved state holds the record's fields as one
``"fields"`` mapping, the format of :mod:`cvbench.training.resume`, so states
saved before this type existed resume unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..spec import RunSpec
from .records import RunRecorder

RESULT_FIELDS = ("metrics", "conventions", "num_queries", "num_references", "uniformity", "warnings")
"""The record's fields that exist once fine-tuning has finished, from its last evaluation."""


@dataclass
class RunState:
    """One run's state between its stages.

    ``evaluated_on`` names the dataset and split evaluation used (another
    than the training one under ``--eval-dataset``); ``pretraining`` maps a
    branch to what its pre-training recorded (losses,
    probe, timings); ``timings`` holds ``pretrain_s``, ``finetune_s``,
    ``eval_s`` and ``total_s`` as each becomes known; ``evaluations`` maps a
    fine-tuning epoch to what evaluating there gave, and ``eval_seconds`` is
    their total time. ``result`` is filled by :meth:`finish_finetuning`.
    """

    spec: RunSpec
    model: nn.Module
    recorder: RunRecorder
    split: str
    evaluated_on: dict[str, str] | None = None
    pretraining: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str | None = None
    processes: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    evaluations: dict[int, dict[str, Any]] = field(default_factory=dict)
    eval_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def resumed(cls, spec: RunSpec, model: nn.Module, recorder: RunRecorder, saved: dict[str, Any]) -> "RunState":
        """The state a saved training state holds; its clock continues from the saved elapsed time."""
        fields = saved["fields"]
        return cls(spec, model, recorder, fields.get("split", spec.split), fields.get("evaluated_on"),
                   dict(fields.get("pretraining", {})),
                   fields.get("device"), fields.get("processes"), dict(fields.get("timings", {})),
                   {name: fields[name] for name in RESULT_FIELDS if name in fields},
                   {int(epoch): value for epoch, value in saved.get("evaluations", {}).items()},
                   float(saved.get("eval_seconds", 0.0)), time.perf_counter() - float(saved.get("elapsed", 0.0)))

    def elapsed(self) -> float:
        """Seconds the run has worked, counting the time before an interruption."""
        return time.perf_counter() - self.started

    def record_fields(self) -> dict[str, Any]:
        """The fields ``result.json`` holds beyond the recorder's own (run, stage, status, spec, environment)."""
        fields: dict[str, Any] = {"split": self.split}
        if self.evaluated_on is not None:
            fields["evaluated_on"] = self.evaluated_on
        fields["pretraining"] = self.pretraining
        if self.device is not None:
            fields["device"] = self.device
        if self.processes is not None:
            fields["processes"] = self.processes
        if self.timings:
            fields["timings"] = self.timings
        return {**fields, **self.result}

    def snapshot(self) -> dict[str, Any]:
        """The run's part of a saved training state (the training loops add their own)."""
        return {"spec": self.spec.to_dict(), "model": self.model.state_dict(), "fields": self.record_fields(),
                "rows": self.recorder.rows, "elapsed": self.elapsed(), "evaluations": self.evaluations,
                "eval_seconds": self.eval_seconds}

    def add_timing(self, name: str, seconds: float) -> None:
        """Record one stage's seconds under ``timings`` (``pretrain_s``, ``finetune_s``, ``eval_s``, ``total_s``)."""
        self.timings[name] = seconds

    def add_evaluation(self, epoch: int, metrics: dict[str, float], uniformity: dict[str, float], num_queries: int,
                       num_references: int, warnings: list[str] | None = None) -> None:
        """Keep what evaluating after fine-tuning epoch ``epoch`` gave (epoch 0: before fine-tuning)."""
        self.evaluations[epoch] = {"metrics": metrics, "uniformity": uniformity, "num_queries": num_queries,
                                   "num_references": num_references, "warnings": list(warnings or [])}

    def finish_finetuning(self) -> None:
        """The record's metrics from the last evaluation, its uniformity before (epoch 0) and after.

        The conventions those numbers follow are recorded beside them, and the
        last evaluation's warnings, where it had any.
        """
        final = self.evaluations[max(self.evaluations)]
        self.result = {"metrics": final["metrics"], "conventions": self.spec.protocol(),
                       "num_queries": final["num_queries"], "num_references": final["num_references"],
                       "uniformity": {"before": self.evaluations[0]["uniformity"], "after": final["uniformity"]}}
        if final.get("warnings"):
            self.result["warnings"] = final["warnings"]

    def write(self, status: str, **extra: Any) -> dict[str, Any]:
        """Replace ``result.json`` with the record so far, under ``status``."""
        return self.recorder.write_result(status, **self.record_fields(), **extra)
