"""The logger kind: an experiment tracker that receives a run's spec, losses, metrics and files (``--logger NAME``)."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

STATUSES = ("finished", "failed", "interrupted")
"""How a run ends, as its ``result.json`` says: what :meth:`Logger.finish` receives."""


class Logger(abc.ABC):
    """Base class of an experiment tracker (TensorBoard, MLflow, ...), built as ``factory(**options)``.

    cvbench calls, on rank 0 only and in this order: :meth:`start` once the
    run folder exists, :meth:`log_hyperparameters` with the flattened spec,
    :meth:`log_metrics` for every training step's losses and every epoch's
    row of ``metrics.csv``, :meth:`log_artifact` for ``result.json`` and the
    run's figure files, and :meth:`finish` with the run's status. A tracker
    only observes: nothing it does changes the run's numbers. When one of its
    calls raises, cvbench prints a warning naming the logger, stops calling
    it, and the run and its record go on.

    ``requires`` names the modules the logger imports and ``extra`` the
    cvbench extra that installs them (``pip install 'cvbench[EXTRA]'``):
    cvbench checks they are importable when it checks the spec, so a missing
    library fails before any compute, naming the logger and the extra. Build
    nothing heavy in ``__init__`` (it runs at that check too); open files and
    connections in :meth:`start`.
    """

    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""

    @abc.abstractmethod
    def start(self, spec: Any, run_dir: Path) -> None:
        """Open the tracker's run for the run folder ``run_dir``.

        ``spec`` is the run's resolved :class:`cvbench.spec.RunSpec` (its
        ``name`` and ``tags`` label the tracked run). A resumed run calls it
        again with the same folder.
        """

    def log_hyperparameters(self, params: dict[str, Any]) -> None:
        """The spec flattened to ``{"lr": 0.0001, "head_options.p": 3.0, "loss": "NAME", ...}``.

        Values are str, int, float or bool. Default: nothing.
        """

    @abc.abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int, stage: str) -> None:
        """Named numbers at ``step`` of ``stage``.

        ``stage`` is ``pretrain_ground`` / ``pretrain_aerial`` / ``finetune``
        (one optimiser step's losses: ``loss`` and each term's ``loss_NAME``,
        ``step`` counting the stage's steps from 1) or ``epoch`` (a row of
        ``metrics.csv``: ``loss``, ``lr``, ``R@1``, ..., ``uniformity_all``;
        ``step`` is the fine-tuning epoch, 0 being the evaluation before it).
        """

    def log_artifact(self, path: Path) -> None:
        """A file of the run folder to keep with the tracked run (``result.json``, figures). Default: nothing."""

    def finish(self, status: str) -> None:
        """Close the tracked run: ``status`` is one of :data:`STATUSES`. Default: nothing."""
