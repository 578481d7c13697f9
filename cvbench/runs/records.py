"""The record a run keeps while it runs: ``result.json`` from the start, ``metrics.csv`` per epoch.

``result.json`` exists from the start with ``"status": "running"`` and is
replaced by the finished (or failed, or interrupted) record; the leaderboard
only ranks finished runs. While running, the record names its owner process and
a heartbeat the recorder refreshes (:meth:`RunRecorder.beat`), so a listing can
tell a run killed outright from a live one (:mod:`cvbench.runs.liveness`).
Where each file lives is :mod:`cvbench.runs.folder`'s.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..spec import RunSpec
from . import liveness
from .folder import RunFolder


class RunRecorder:
    """Writes one run's files, each atomically.

    ``write=False`` makes a recorder that keeps the rows but writes nothing:
    the ranks other than 0 of a multi-process run hold one.
    """

    def __init__(self, run_dir: Path | RunFolder, spec: RunSpec, stage: str, write: bool = True,
                 resumed: tuple[dict[str, Any], list[dict[str, Any]]] | None = None) -> None:
        self.folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
        self.dir = self.folder.path
        self.spec = spec
        self.stage = stage
        self.write = write
        self.rows: list[dict[str, Any]] = []
        self.record: dict[str, Any] = {}
        self._lock = threading.Lock()  # the heartbeat thread and the run both rewrite result.json
        self.started = _dt.datetime.now(_dt.timezone.utc)
        if resumed is not None:  # the run's own start time and epochs; metrics.csv is rewritten to those rows
            record, rows = resumed
            self.started = _dt.datetime.fromisoformat(record.get("started", self.started.isoformat()))
            self.rows = [dict(row) for row in rows]
        elif write:
            self.folder.write_spec(spec)
        if resumed is not None and write and self.rows:
            self.folder.write_metrics(self.rows)
        self.write_result(status="running")

    def checkpoint(self, name: str) -> Path:
        return self.folder.checkpoint(name)

    def save_weights(self, name: str, module: Any, metadata: dict[str, Any] | None = None) -> Path:
        """Save ``module``'s weights as ``checkpoints/<name>`` (atomically)."""
        if self.write:
            return self.folder.save_weights(name, module, metadata)
        return self.checkpoint(name)

    def discard(self, name: str) -> None:
        """Remove ``checkpoints/<name>`` if it exists."""
        if self.write:
            self.folder.discard(name)

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics and rewrite ``metrics.csv`` atomically."""
        self.rows.append(row)
        if self.write:
            self.folder.write_metrics(self.rows)

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
            "owner": liveness.owner(),
            "heartbeat": liveness.now(),
            "environment": environment(fields.get("device")),
        }
        with self._lock:
            self.record = record
            if self.write:
                self.folder.write_result(record)
        return record

    def beat(self) -> None:
        """Refresh the heartbeat of a running record (a finished, failed or interrupted one is left as it is)."""
        with self._lock:
            if not self.write or self.record.get("status") != liveness.RUNNING:
                return
            self.record = {**self.record, "heartbeat": liveness.now()}
            self.folder.write_result(self.record)


def environment(device: str | None = None) -> dict[str, Any]:
    """Versions and machine facts that make a number reproducible.

    ``plugins`` names every installed plugin package (its methods made the
    number) and ``gpu`` the GPU model of a CUDA run, ``None`` elsewhere.
    """
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
        "gpu": gpu_model(device),
        "packages": packages,
        "plugins": plugin_packages(),
    }


def plugin_packages() -> dict[str, str]:
    """The version of every installed distribution that provides ``cvbench`` entry points, by distribution name."""
    from importlib.metadata import entry_points

    from ..contract.hookspecs import PROJECT

    found = {ep.dist.name: ep.dist.version for ep in entry_points(group=PROJECT) if ep.dist is not None}
    return dict(sorted(found.items()))


def gpu_model(device: str | None) -> str | None:
    """``torch.cuda.get_device_name`` of the current GPU where the run's device is CUDA; None otherwise."""
    import torch

    if not device or not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(torch.cuda.current_device())
