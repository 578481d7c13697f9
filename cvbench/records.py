"""Run records: one folder per run, written atomically.

``RUN_DIR/spec.json``       the resolved spec
``RUN_DIR/metrics.csv``     one row per epoch (epoch 0 = before fine-tuning)
``RUN_DIR/checkpoints/``    safetensors weights
``RUN_DIR/result.json``     spec, status, metrics, uniformity, timings, environment

``result.json`` exists from the start with ``"status": "running"`` and is
replaced by the finished (or failed) record; the leaderboard only ranks
finished runs.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import atomic_path, write_json
from .checkpoint import save_weights
from .spec import RunSpec

RESULT = "result.json"
SPEC = "spec.json"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"


def new_run_dir(runs_dir: str | Path, spec: RunSpec, stage: str = "run") -> Path:
    """Create a fresh folder for a run; concurrent runs never get the same one."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    parts = [stamp, stage, spec.dataset, spec.pretrainer, spec.head, f"s{spec.seed}"]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(p) for p in parts if p))
    for attempt in range(1000):
        path = runs_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {runs_dir}")


class RunRecorder:
    """Writes one run's files, each atomically.

    ``write=False`` makes a recorder that keeps the rows but writes nothing:
    the ranks other than 0 of a multi-process run hold one.
    """

    def __init__(self, run_dir: Path, spec: RunSpec, stage: str, write: bool = True,
                 resumed: tuple[dict[str, Any], list[dict[str, Any]]] | None = None) -> None:
        self.dir = Path(run_dir)
        self.spec = spec
        self.stage = stage
        self.write = write
        self.rows: list[dict[str, Any]] = []
        self.started = _dt.datetime.now(_dt.timezone.utc)
        if resumed is not None:  # the run's own start time and epochs; metrics.csv is rewritten to those rows
            record, rows = resumed
            self.started = _dt.datetime.fromisoformat(record.get("started", self.started.isoformat()))
            self.rows = [dict(row) for row in rows]
        elif write:
            (self.dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
            write_json(self.dir / SPEC, spec.to_dict())
        if resumed is not None and write and self.rows:
            self._write_rows()
        self.write_result(status="running")

    def checkpoint(self, name: str) -> Path:
        return self.dir / CHECKPOINTS / name

    def save_weights(self, name: str, module: Any, metadata: dict[str, Any] | None = None) -> Path:
        """Save ``module``'s weights as ``checkpoints/<name>`` (atomically)."""
        path = self.checkpoint(name)
        if self.write:
            save_weights(path, module, metadata=metadata)
        return path

    def discard(self, name: str) -> None:
        """Remove ``checkpoints/<name>`` if it exists."""
        if self.write:
            self.checkpoint(name).unlink(missing_ok=True)

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics and rewrite ``metrics.csv`` atomically."""
        self.rows.append(row)
        if self.write:
            self._write_rows()

    def _write_rows(self) -> None:
        with atomic_path(self.dir / METRICS) as tmp:
            pd.DataFrame(self.rows).to_csv(tmp, index=False)

    def write_result(self, status: str, **fields: Any) -> dict[str, Any]:
        """Replace ``result.json`` with the record so far."""
        record = {
            "cvbench_result": 1,
            "run": self.dir.name,
            "stage": self.stage,
            "status": status,
            "spec": self.spec.to_dict(),
            "started": self.started.isoformat(timespec="seconds"),
            **fields,
            "environment": environment(fields.get("device")),
        }
        if self.write:
            write_json(self.dir / RESULT, record)
        return record


def environment(device: str | None = None) -> dict[str, Any]:
    """Versions and machine facts that make a number reproducible."""
    packages = {}
    for name in ("cvbench", "torch", "torchvision", "timm", "numpy", "faiss-cpu"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "packages": packages,
    }
