"""A run's experiment trackers (``--logger NAME``): the selected loggers, every call fanned out to each of them.

The run tells :class:`Trackers` what happens (it starts, a step's losses, an
epoch's row of ``metrics.csv``, how it ended) and each logger plugin
(:class:`cvbench.Logger`) passes it on to its tracker. Only rank 0 logs under
``torchrun``. A tracker is an observer: when one of its calls raises, a
warning names the logger and the call, the logger is dropped for the rest of
the run, and the run, its numbers and its record go on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from rich.markup import escape

from ..contract.logger import Logger
from ..contract.registry import create
from ..errors import error_message
from ..nn import distributed
from ..progress import STDERR
from ..spec import RunSpec
from ..spec.validate import check_loggers
from .folder import RunFolder
from .run_settings import option_text

EPOCH = "epoch"
"""The stage name of a ``metrics.csv`` row: its ``step`` is the fine-tuning epoch (0: before fine-tuning)."""
FINETUNE = "finetune"
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
NOT_FIGURES = ("checkpoints",)  # a run's folders that hold no figure

StepLog = Callable[[int, dict[str, float]], None]


def pretrain_stage(branch: str) -> str:
    """The stage name of one branch's pre-training steps: ``pretrain_ground`` or ``pretrain_aerial``."""
    return f"pretrain_{branch}"


class Trackers:
    """The run's loggers by name; every method calls each of them, in the order given by ``--logger``."""

    def __init__(self, loggers: dict[str, Logger]) -> None:
        self.loggers = dict(loggers)
        self.started = False
        self.failures: list[str] = []

    @classmethod
    def from_spec(cls, spec: RunSpec) -> "Trackers":
        """Build the spec's loggers; only rank 0 keeps them.

        A bad option, or a library missing since the run began (``--resume``),
        fails here, before compute.
        """
        check_loggers(spec.loggers)
        built = {name: create("logger", name, **spec.logger_options.get(name, {})) for name in spec.loggers}
        return cls(built if distributed.is_main() else {})

    def start(self, spec: RunSpec, run_dir: Path) -> None:
        """Open each tracker's run for ``run_dir`` and log the spec as its hyper-parameters."""
        self.started = True
        self._call("start", spec, run_dir)
        self._call("log_hyperparameters", hyperparameters(spec))

    def steps(self, stage: str) -> StepLog | None:
        """What a training stage calls with each step's losses (``loss``, ``loss_TERM``); None without loggers."""
        if not self.loggers:
            return None

        def log_step(step: int, values: dict[str, float]) -> None:
            losses = {name if name == "loss" else f"loss_{name}": value for name, value in values.items()}
            self._call("log_metrics", losses, step, stage)

        return log_step

    def log_epoch(self, row: dict[str, Any]) -> None:
        """One row of ``metrics.csv`` (losses, lr, recall, uniformity, ...) at its epoch."""
        metrics = {name: float(value) for name, value in row.items()
                   if name != EPOCH and isinstance(value, (int, float)) and not isinstance(value, bool)}
        if metrics:
            self._call("log_metrics", metrics, int(row[EPOCH]), EPOCH)

    def end(self, run_dir: Path, status: str) -> None:
        """Log the record (``result.json``) and the run's figures as artifacts, then close with ``status``."""
        if not self.started:
            return
        folder = RunFolder(run_dir)
        for path in [folder.result_file, *figures(folder.path)]:
            if path.is_file():
                self._call("log_artifact", path)
        self._call("finish", status)

    def _call(self, method: str, *args: Any) -> None:
        for name, logger in list(self.loggers.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker must not take the run down
                self._drop(name, method, exc)

    def _drop(self, name: str, method: str, exc: Exception) -> None:
        logger = self.loggers.pop(name)
        message = f"logger {name!r} failed in {method}(): {type(exc).__name__}: {error_message(exc)}"
        self.failures.append(message)
        STDERR.print(f"[yellow]warning:[/] {escape(message)}; it logs nothing more for this run (the run and its "
                     "record go on)", highlight=False)
        if method != "finish":
            try:
                logger.finish("failed")
            except Exception:  # noqa: BLE001 - already reported; this only lets it close its files
                pass


def hyperparameters(spec: RunSpec) -> dict[str, Any]:
    """The spec flattened for a tracker: ``{"lr": 0.0001, "head_options.p": 3.0, "loss": "NAME", ...}``.

    Scalars stay as they are; lists and unset options become their CLI text
    (``recall,ap``, ``32x128``, ``-``); plugin options become one entry each.
    """
    flat: dict[str, Any] = {}

    def add(key: str, value: Any, top: bool) -> None:
        if isinstance(value, dict):
            for inner, item in value.items():
                add(f"{key}.{inner}", item, False)
        elif isinstance(value, (bool, int, float, str)):
            flat[key] = value
        else:
            flat[key] = option_text(key, value) if top else json.dumps(value)

    for key, value in spec.to_dict().items():
        add(key, value, True)
    return flat


def figures(run_dir: Path) -> list[Path]:
    """The figure files in a run folder (``cvbench analyze`` writes them under ``analysis/``), in a stable order."""
    return sorted(path for path in run_dir.rglob("*") if path.suffix.lower() in FIGURE_SUFFIXES
                  and not set(path.relative_to(run_dir).parts) & set(NOT_FIGURES))
