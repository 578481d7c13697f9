"""``cvbench bench FILE --status``: where each stage and run of a grid stands.

Read from two sources and nothing else: the run records in the results
folder (a finished one settles it; a running one is judged alive or dead by
:mod:`cvbench.runs.liveness`) and the ledger of jobs the ``submitit``
launcher submitted (:mod:`cvbench.bench.submitit_launcher`), asked for each
job's state. A grid run with the local launcher has no ledger: its status
comes from the records alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import CvbenchError
from ..runs.folder import RunFolder
from ..runs.liveness import RUNNING as RECORD_RUNNING
from ..spec.run_spec import from_record
from .scheduler import Job, identity, plan
from .schema import Bench
from .submitit_launcher import FAILED, FINISHED, QUEUED, RUNNING, job_state, latest_job, read_ledger

TO_RUN, INVALID = "to run", "invalid"
STATES = (FINISHED, RUNNING, QUEUED, FAILED, TO_RUN, INVALID)


@dataclass
class RunStatus:
    """One stage (``@name``) or (row, seed) of a grid: its state, its job (if one was submitted), and the run
    folder, or for a failure the error and the log to read."""

    row: str
    seed: int
    state: str
    job: str = ""
    detail: str = ""


def grid_status(bench: Bench, runs_dir: Path, only: Sequence[str] | None = None) -> list[RunStatus]:
    """The state of each stage and (row, seed) of ``bench`` in ``runs_dir``, stages first, in file order."""
    stages, rows = plan(bench, runs_dir, only)
    ledger = read_ledger(runs_dir)
    records = _records(runs_dir)
    return [_status(job, kind, ledger, records)
            for jobs, kind in ((list(stages.values()), "pretrain"), (rows, "run")) for job in jobs]


def _status(job: Job, kind: str, ledger: list[dict[str, Any]],
            records: list[tuple[dict[str, Any], dict[str, Any], Path]]) -> RunStatus:
    if job.error is not None:
        return RunStatus(job.row, job.seed, INVALID, detail=job.error)
    key = identity(job.spec.to_dict(), kind)
    entry = latest_job(ledger, job.row, job.seed, key)
    if job.done is not None:
        return RunStatus(job.row, job.seed, FINISHED, str(entry["job_id"]) if entry else "", str(job.done))
    runs = [(record, path) for spec, record, path in records if spec == key]
    if entry is not None:
        state, detail = job_state(entry)
        if state == RUNNING and runs:
            detail = str(runs[-1][1])  # the run folder its job writes
        return RunStatus(job.row, job.seed, state, str(entry["job_id"]), detail)
    if not runs:
        return RunStatus(job.row, job.seed, TO_RUN)
    record, path = runs[-1]  # the newest run of it (folders are named by start time)
    if record.get("status") == RECORD_RUNNING:
        return RunStatus(job.row, job.seed, RUNNING, detail=str(path))
    reason = record.get("error") or record.get("resume") or record.get("status")
    return RunStatus(job.row, job.seed, FAILED, detail=f"{reason}; run folder: {path}")


def _records(runs_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any], Path]]:
    """(identity, record as a listing reads it, folder) of every run below ``runs_dir`` that is not finished,
    oldest first. A finished run is :func:`cvbench.bench.scheduler.plan`'s."""
    found = []
    for folder in RunFolder.all_under(runs_dir):
        record = folder.record()
        if record.get("status") in ("finished", "unreadable") or not record.get("spec"):
            continue
        try:
            spec = from_record(record["spec"]).to_dict()
        except CvbenchError:
            continue
        found.append((identity(spec, record.get("stage", "run")), record, folder.path))
    return sorted(found, key=lambda item: item[2].name)
