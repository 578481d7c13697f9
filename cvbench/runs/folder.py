"""The run folder: every path, read and write of one run, in one place.

``RUN/spec.json``                       the resolved spec
``RUN/result.json``                     the record (status, metrics, uniformity, timings, environment)
``RUN/metrics.csv``                     one row per epoch (epoch 0 = before fine-tuning)
``RUN/checkpoints/model.safetensors``   the fine-tuned two-branch model (its spec in the metadata)
``RUN/checkpoints/initial.safetensors`` the model as fine-tuning found it (``cvbench analyze``'s "before")
``RUN/checkpoints/pretrained_<branch>.safetensors``  a pre-trained backbone (a start for other runs)
``RUN/checkpoints/state.pt``            the training state of an unfinished run (``--resume``)
``RUN/predictions_<split>.csv``         ``cvbench eval --predictions`` (:mod:`cvbench.runs.predictions`)

Every write is atomic, so an interrupted write never leaves a half file in
place of a good one. The leaderboard, ``bench``, ``analyze``, ``eval`` and
``--resume`` all read runs through :class:`RunFolder`.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import atomic_path, write_json
from ..errors import CvbenchError, SpecError
from ..spec import BRANCHES, STARTS, RunSpec, expand, from_record, is_file
from ..spec.parse import show
from ..training.checkpoint import check_made_with, read_metadata, save_weights
from ..training.resume import STATE
from .liveness import judged
from .record_shape import shape_problem

RESULT = "result.json"
TRACKER_STORES = {"mlruns"}  # an experiment tracker's store beside the runs: its copies of result.json are no runs
SPEC = "spec.json"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"
MODEL_CHECKPOINT = "model.safetensors"
INITIAL_CHECKPOINT = "initial.safetensors"
CHECKPOINT_SUFFIX = ".safetensors"
NAME_IN_FOLDER = 64
"""How much of ``--name`` a run folder's name holds: file systems cap a name at 255 bytes."""


def pretrained_name(branch: str) -> str:
    """The file name of a branch's pre-trained backbone in ``checkpoints/``."""
    return f"pretrained_{branch}{CHECKPOINT_SUFFIX}"


def start_checkpoint(start: str, branch: str, option: str = "base_init") -> Path | None:
    """The backbone checkpoint a start value names for ``branch``; None for ``random`` / ``imagenet``.

    A start is ``random``, ``imagenet``, a ``.safetensors`` backbone file (both
    branches) or a folder with ``pretrained_<branch>.safetensors`` (a
    ``cvbench pretrain`` run folder, or its ``checkpoints/``): the offline
    ImageNet stand-in of the benchmark grids is such a folder.
    """
    if start in STARTS:
        return None
    path = expand(start, option)
    if path.suffix == CHECKPOINT_SUFFIX:
        if not is_file(path):
            raise SpecError(f"--{option.replace('_', '-')} {show(start)}: no such checkpoint file")
        return path
    for candidate in (path / pretrained_name(branch), path / CHECKPOINTS / pretrained_name(branch)):
        if is_file(candidate):
            return candidate
    raise SpecError(f"--{option.replace('_', '-')} {show(start)}: expected {', '.join(STARTS)}, a {CHECKPOINT_SUFFIX} "
                    f"backbone checkpoint, or a folder holding pretrained_{branch}{CHECKPOINT_SUFFIX} "
                    "(a `cvbench pretrain` run folder)")


def check_starts(spec: RunSpec) -> None:
    """Every start a spec names (``--pretrain-from``, ``--base-init``, ``--<branch>-init``) exists; SpecError if not."""
    for name in ("pretrain_from", "base_init"):
        for branch in BRANCHES:
            start_checkpoint(getattr(spec, name), branch, name)
    for branch in BRANCHES:
        init = getattr(spec, f"{branch}_init")
        if init not in ("auto", "pretrained"):
            start_checkpoint(init, branch, f"{branch}_init")


class RunFolder:
    """One run's folder; nothing is read or written until asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: str | Path, spec: RunSpec, stage: str = "run") -> "RunFolder":
        """A fresh folder for a run, named by time, stage, ``--name`` (where given; its first
        :data:`NAME_IN_FOLDER` characters), dataset, pretrainer, head and seed; never shared. Characters other than
        letters, digits, ``.``, ``_`` and ``-`` become ``_``."""
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise CvbenchError(f"--runs-dir {runs_dir}: it, or a folder above it, is a file; expected a folder "
                               "(made if missing)") from None
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        label = spec.name[:NAME_IN_FOLDER] if spec.name else None
        parts = [stamp, stage, label, spec.dataset, spec.pretrainer, spec.head, f"s{spec.seed}"]
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(p) for p in parts if p))
        for attempt in range(1000):
            path = runs_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise CvbenchError(f"could not create a new run folder under {runs_dir}")

    @classmethod
    def all_under(cls, runs_dir: str | Path) -> list["RunFolder"]:
        """Every run folder (one holding a ``result.json``) below ``runs_dir``, sorted by path."""
        runs_dir = Path(runs_dir)
        return [cls(path.parent) for path in sorted(runs_dir.rglob(RESULT))
                if not set(path.relative_to(runs_dir).parts) & TRACKER_STORES] if runs_dir.is_dir() else []

    # paths
    @property
    def result_file(self) -> Path:
        return self.path / RESULT

    @property
    def spec_file(self) -> Path:
        return self.path / SPEC

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints / name

    def pretrained(self, branch: str) -> Path:
        return self.checkpoint(pretrained_name(branch))

    @property
    def state_file(self) -> Path:
        return self.checkpoint(STATE)

    def predictions(self, split: str) -> Path:
        return self.path / f"predictions_{split}.csv"

    # reads
    def read_result(self) -> dict[str, Any]:
        """The record, or a :class:`CvbenchError` saying why this is not a readable run."""
        try:
            record = json.loads(self.result_file.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or "spec" not in record:
                raise ValueError("not a cvbench result record")
        except (OSError, ValueError) as exc:
            raise CvbenchError(f"{self.path} is not a readable cvbench run ({exc})") from None
        return record

    def record(self) -> dict[str, Any]:
        """The record for a listing: an unreadable one becomes an ``unreadable`` row naming the error.

        A record saying ``running`` whose process died (SIGKILL, a power cut)
        reads as ``dead``, with the command that resumes it
        (:func:`cvbench.runs.liveness.judged`); the file itself is left as it is.
        A record whose fields do not fit what a listing reads
        (:mod:`cvbench.runs.record_shape`) is unreadable too, naming the field.
        """
        try:
            record = self.read_result()
            problem = shape_problem(record)
            if problem:
                raise CvbenchError(f"{self.result_file} does not fit a cvbench result record: {problem}")
        except CvbenchError as exc:
            record = {"run": self.name, "status": "unreadable", "error": str(exc), "spec": {}}
        record.setdefault("run", self.name)
        return judged(record, self.path)

    def read_spec(self) -> RunSpec:
        """The spec the run was started with (``spec.json``)."""
        try:
            return from_record(json.loads(self.spec_file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise CvbenchError(f"{self.path} has no readable {SPEC} ({exc})") from None

    def checkpoint_spec(self, checkpoint: str = MODEL_CHECKPOINT) -> RunSpec:
        """The spec stored in ``checkpoints/<checkpoint>``'s metadata, naming the folder if it is not a run.

        The checkpoint must have been made with this run's spec (``spec.json``)
        in every field that defines the weights
        (:func:`cvbench.training.checkpoint.check_made_with`): another run's
        model copied here would otherwise be evaluated under this run's name.
        """
        path = self.checkpoint(checkpoint)
        if not self.spec_file.is_file() or not path.is_file():
            raise CvbenchError(f"{self.path} is not a finished cvbench run (expected {SPEC} and "
                               f"{CHECKPOINTS}/{checkpoint})")
        metadata = read_metadata(path)
        check_made_with(path, metadata, self.read_spec(), str(self.spec_file), self.name)
        return from_record(metadata["spec"])

    def read_metrics(self) -> pd.DataFrame:
        """The per-epoch rows of ``metrics.csv``."""
        if not self.metrics_file.is_file():
            raise CvbenchError(f"{self.path} has no {METRICS}: the run never evaluated")
        return pd.read_csv(self.metrics_file)

    # writes (each atomic)
    def write_spec(self, spec: RunSpec) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        write_json(self.spec_file, spec.to_dict())

    def write_result(self, record: dict[str, Any]) -> None:
        write_json(self.result_file, record)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        with atomic_path(self.metrics_file) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)

    def save_weights(self, name: str, module: Any, metadata: dict[str, Any] | None = None) -> Path:
        return save_weights(self.checkpoint(name), module, metadata=metadata)

    def discard(self, name: str) -> None:
        """Remove ``checkpoints/<name>`` if it exists."""
        self.checkpoint(name).unlink(missing_ok=True)

    def remove_partial_writes(self) -> None:
        """Delete what an atomic write cut short by SIGKILL left behind (``.*.tmp``)."""
        for leftover in self.path.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)
