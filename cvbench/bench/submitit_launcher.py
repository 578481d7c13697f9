"""``cvbench bench FILE --launcher submitit``: each missing run of a grid as one SLURM job, through submitit.

A job runs its row exactly as the local launcher does (the same resolved
spec, into the same ``RUNS_DIR/<row>/`` folder, named the same way), so its
record is the one a local run writes. One GPU or none: the job calls
:func:`cvbench.runs.runner.run` on the pickled spec. ``gpus=N`` with N > 1:
the job is one task that starts ``python -m torch.distributed.run --standalone
--nproc-per-node N -m cvbench run --config SPEC.toml`` on its node
(:func:`torchrun_command`), the same torchrun a multi-GPU run uses by hand.

Every submission is recorded in ``RUNS_DIR/jobs/jobs.json`` (the *ledger*,
rewritten atomically after each one), and submitit keeps each job's pickles
and logs in ``RUNS_DIR/jobs/<job id>/``; ``--status`` and a rerun read both
(:func:`job_state`), so a rerun never submits a run whose job is still
queued or running. ``cluster=local`` runs the jobs as processes of this
machine through submitit's local executor, for trying a grid out (and for
the tests) without SLURM.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_json, write_text
from ..errors import CvbenchError
from ..progress import make_progress
from ..runs import liveness
from ..runs.folder import RunFolder
from ..spec import RunSpec
from ..spec.run_spec import from_record

if TYPE_CHECKING:
    from .scheduler import BenchOutcome, Job

OPTIONS = {
    "cluster": "slurm (the default: sbatch) or local (jobs as processes of this machine, no SLURM needed)",
    "partition": "the SLURM partition",
    "time": "each job's time limit, in SLURM's format (35:00:00, 1-12:00:00, 90 for minutes); needed on SLURM",
    "gpus": "GPUs per job; more than 1 runs the row under torchrun inside its job",
    "cpus": "CPUs per job",
    "mem": "memory per job (64G, 500M; a plain number is megabytes, as in sbatch)",
    "account": "the SLURM account to charge",
    "qos": "the SLURM quality of service",
    "constraint": "SLURM node features (a100, \"a100|h100\")",
}
CLUSTERS = ("slurm", "local")
JOBS = "jobs"  # the folder under RUNS_DIR that holds the ledger and submitit's files
LEDGER = "jobs.json"
QUEUED, RUNNING, FINISHED, FAILED = "queued", "running", "finished", "failed"
SLURM_QUEUED = {"PENDING", "REQUEUED", "CONFIGURING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED"}
SLURM_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}


# ---------------------------------------------------------------- options -> submitit parameters


def slurm_minutes(text: str) -> int:
    """A SLURM time limit (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``) in whole
    minutes, rounded up."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    seconds = 0
    if match is not None:
        days, first, second, third = (int(part) if part else None for part in match.groups())
        if days is not None:  # D-HH[:MM[:SS]]
            seconds = days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
        elif third is not None:  # HH:MM:SS
            seconds = first * 3600 + second * 60 + third
        else:  # MM[:SS]
            seconds = first * 60 + (second or 0)
    if seconds <= 0:
        raise CvbenchError(f"--launcher-option time={text}: expected a SLURM time limit such as 35:00:00, "
                           "1-12:00:00 or 90 (minutes)")
    return math.ceil(seconds / 60)


def memory_gb(text: str) -> float:
    """A memory size as sbatch takes it (``64G``, ``500M``, ``1T``; no unit: megabytes) in gigabytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text.strip(), flags=re.IGNORECASE)
    if match is None or float(match[1]) <= 0:
        raise CvbenchError(f"--launcher-option mem={text}: expected a memory size such as 64G or 500M")
    scale = {"K": 1 / 1024 ** 2, "M": 1 / 1024, "": 1 / 1024, "G": 1, "T": 1024}[match[2].upper()]
    return float(match[1]) * scale


def _count(options: dict[str, str], key: str) -> int | None:
    if key not in options:
        return None
    value = options[key]
    if not value.isdigit() or int(value) < 1:
        raise CvbenchError(f"--launcher-option {key}={value}: expected a whole number of at least 1")
    return int(value)


def executor_parameters(options: dict[str, str]) -> dict[str, Any]:
    """The launcher options as ``submitit.AutoExecutor.update_parameters`` takes them.

    A job is one task on one node: with several GPUs, torchrun inside the job
    starts one process per GPU.
    """
    parameters: dict[str, Any] = {"nodes": 1, "tasks_per_node": 1}
    if "time" in options:
        parameters["timeout_min"] = slurm_minutes(options["time"])
    if "mem" in options:
        parameters["mem_gb"] = memory_gb(options["mem"])
    for key, name in (("gpus", "gpus_per_node"), ("cpus", "cpus_per_task")):
        if (count := _count(options, key)) is not None:
            parameters[name] = count
    for key in ("partition", "account", "qos", "constraint"):
        if key in options:
            parameters[f"slurm_{key}"] = options[key]
    return parameters


def torchrun_command(gpus: int, command: str, config: Path, runs_dir: Path) -> list[str]:
    """The command a multi-GPU job runs: ``cvbench COMMAND --config SPEC.toml`` under torchrun, one process per
    GPU of its node (the interpreter that submitted it, so the job uses the same installation)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
            "-m", "cvbench", command, "--config", str(config), "--runs-dir", str(runs_dir), "--quiet"]


def run_job(spec: RunSpec, runs_dir: str, stage: str) -> str:
    """What a one-GPU (or CPU) job runs: the pipeline on ``spec`` into ``runs_dir``; the run folder."""
    from ..runs.runner import run

    return str(run(spec, runs_dir, stage=stage, finetune_stage=stage != "pretrain"))


# ---------------------------------------------------------------- the ledger of submitted jobs


def jobs_dir(runs_dir: Path) -> Path:
    return Path(runs_dir) / JOBS


def read_ledger(runs_dir: Path) -> list[dict[str, Any]]:
    """Every job submitted for the grid in ``runs_dir``, oldest first ([] when none was)."""
    path = jobs_dir(runs_dir) / LEDGER
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("jobs")
    except (OSError, ValueError, AttributeError):
        entries = None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise CvbenchError(f"{path} is not a readable ledger of submitted jobs; expected {{\"jobs\": [...]}} as "
                           "cvbench writes it (move it away to start a new one; the jobs it named keep running)")
    return entries


def latest_job(ledger: list[dict[str, Any]], row: str, seed: int, key: dict[str, Any]) -> dict[str, Any] | None:
    """The last job submitted for ``row`` at ``seed`` with the identity ``key`` (the row's options may have
    changed since an older job was submitted: that job is another experiment)."""
    from .scheduler import identity

    for entry in reversed(ledger):
        if entry.get("row") != row or entry.get("seed") != seed:
            continue
        try:
            if identity(from_record(entry["spec"]).to_dict(), entry.get("stage", "run")) == key:
                return entry
        except (CvbenchError, KeyError, TypeError):
            continue
    return None


def job_state(entry: dict[str, Any]) -> tuple[str, str]:
    """(state, detail) of a recorded job: queued, running, finished or failed; a failed job's detail names its
    log. Read from the job's result file, then from SLURM (``sacct``) or, for a local job, its process."""
    folder = Path(entry["folder"])
    job_id = str(entry["job_id"])
    result, log = folder / f"{job_id}_0_result.pkl", folder / f"{job_id}_0_log.err"
    if result.exists():
        from submitit.core.utils import pickle_load

        try:
            outcome, value = pickle_load(result)
        except Exception:  # noqa: BLE001  half-written or from another submitit: the log says more
            return FAILED, f"unreadable result {result}; log: {log}"
        if outcome == "success":
            return FINISHED, str(value).strip().splitlines()[-1] if str(value).strip() else ""
        return FAILED, f"{str(value).strip().splitlines()[-1] if str(value).strip() else 'error'}; log: {log}"
    if entry.get("cluster") == "local":
        alive = liveness.liveness({"owner": entry.get("owner"), "heartbeat": entry.get("submitted")})
        return (RUNNING, "") if alive != liveness.DEAD else (FAILED, f"its process ended without a result; log: {log}")
    import submitit

    watcher = submitit.SlurmJob.watcher  # sacct for every job it knows, asked now: a listing's jobs are all new
    watcher.register_job(job_id)
    state = (watcher.get_state(job_id, mode="force").split() or ["UNKNOWN"])[0].upper()
    if state in SLURM_QUEUED or state == "UNKNOWN":  # sacct may not know a job submitted a moment ago
        return QUEUED, "" if state != "UNKNOWN" else "not yet known to sacct"
    if state in SLURM_RUNNING:
        return RUNNING, ""
    return FAILED, f"SLURM state {state}; log: {log}"


# ---------------------------------------------------------------- the launcher


class SubmititLauncher:
    """Submits each missing stage and run of a grid as a job; waits for them unless ``wait`` is False."""

    name = "submitit"

    def __init__(self, options: dict[str, str], wait: bool = True) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise CvbenchError(f"--launcher-option {unknown[0]}: not an option of --launcher submitit; known: "
                               f"{', '.join(OPTIONS)}")
        self.cluster = options.get("cluster", "slurm")
        if self.cluster not in CLUSTERS:
            raise CvbenchError(f"--launcher-option cluster={self.cluster}: expected {' or '.join(CLUSTERS)}")
        self.options = options
        self.parameters = executor_parameters(options)
        self.gpus = self.parameters.get("gpus_per_node", 0)
        self.waits = wait
        self.poll_s = 1.0 if self.cluster == "local" else 30.0
        self.submitted: list[tuple[str, int, str]] = []  # (row, seed, job id) submitted by this call
        self.in_flight: list[tuple[str, int, str]] = []  # queued or running before this call: not resubmitted
        self._executor: Any = None

    def check(self, runs_dir: Path) -> None:
        """Everything that can fail before a job is submitted: submitit installed, SLURM here, the parameters."""
        try:
            import submitit
        except ImportError:
            raise CvbenchError("--launcher submitit needs submitit, which is not installed: "
                               "pip install cvbench[slurm]") from None
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise CvbenchError("--launcher submitit: no SLURM on this machine (no sbatch on PATH); submit from the "
                               "cluster's login node, or add --launcher-option cluster=local to run the jobs as "
                               "processes here")
        if self.cluster == "slurm" and "timeout_min" not in self.parameters:
            raise CvbenchError("--launcher submitit needs --launcher-option time=HH:MM:SS, each job's time limit "
                               "(SLURM ends a job at its limit; submitit's default is 5 minutes)")
        parameters = dict(self.parameters)
        if self.cluster == "local":
            parameters.setdefault("timeout_min", 7 * 24 * 60)  # the local executor's own default is 2 minutes
        try:
            self._executor = submitit.AutoExecutor(folder=jobs_dir(runs_dir) / "%j", cluster=self.cluster)
            self._executor.update_parameters(**parameters)
        except (RuntimeError, ValueError, NameError, AssertionError) as exc:
            raise CvbenchError(f"--launcher submitit: submitit refused the options "
                               f"{', '.join(f'{k}={v}' for k, v in self.options.items()) or '(none)'}: "
                               f"{str(exc).splitlines()[0]}") from None

    def run_stage(self, job: "Job", runs_dir: Path, folder: Path, quiet: bool) -> Path | None:
        """A stage as one job; its run folder once it finished, None while it is queued or running (no wait).

        A failed stage stops the grid, as it does locally: its rows need it.
        """
        entry = self._submit_or_find([job], runs_dir, {job.row: folder}, "pretrain")[0]
        if not self.waits:
            return None
        state, detail = self._wait([(job, entry)], quiet, f"stage {job.row}")[0]
        if state != FINISHED:
            raise CvbenchError(f"stage {job.row}: job {entry['job_id']} failed: {detail}")
        return Path(detail)

    def run_rows(self, jobs: list["Job"], runs_dir: Path, outcome: "BenchOutcome", quiet: bool) -> None:
        """Submit the rows' runs (those not already queued or running) and, unless ``wait`` is off, wait."""
        entries = self._submit_or_find(jobs, runs_dir, {job.row: runs_dir / job.row for job in jobs}, "run")
        if not self.waits or not jobs:
            return
        for job, entry, (state, detail) in zip(jobs, entries, self._wait(list(zip(jobs, entries)), quiet)):
            if state == FINISHED:
                outcome.ran += 1
            else:
                outcome.failed.append((job.row, job.seed, f"job {entry['job_id']}: {detail}"))

    def _submit_or_find(self, jobs: list["Job"], runs_dir: Path, folders: dict[str, Path],
                        stage: str) -> list[dict[str, Any]]:
        """Each job's ledger entry: the queued or running one already there, else a new submission."""
        from .scheduler import identity

        ledger = read_ledger(runs_dir)
        entries = []
        for job in jobs:
            entry = latest_job(ledger, job.row, job.seed, identity(job.spec.to_dict(), stage))
            if entry is not None and job_state(entry)[0] in (QUEUED, RUNNING):
                self.in_flight.append((job.row, job.seed, str(entry["job_id"])))
                entries.append(entry)
                continue
            entry = self._submit(job, runs_dir, folders[job.row], stage)
            ledger.append(entry)
            write_json(jobs_dir(runs_dir) / LEDGER, {"jobs": ledger})  # after each: a failed submit loses no id
            self.submitted.append((job.row, job.seed, str(entry["job_id"])))
            entries.append(entry)
        return entries

    def _submit(self, job: "Job", runs_dir: Path, folder: Path, stage: str) -> dict[str, Any]:
        self._executor.update_parameters(name=f"cvbench:{runs_dir.name}:{job.row}:s{job.seed}")
        folder = folder.resolve()
        if self.gpus > 1:
            from submitit.helpers import CommandFunction

            from ..spec.config import dump_config

            config = jobs_dir(runs_dir).resolve() / "specs" / f"{job.row}-s{job.seed}.toml"
            write_text(config, dump_config(job.spec))
            command = "pretrain" if stage == "pretrain" else "run"
            submitted = self._executor.submit(CommandFunction(torchrun_command(self.gpus, command, config, folder)))
        else:
            submitted = self._executor.submit(run_job, job.spec, str(folder), stage)
        entry = {"row": job.row, "seed": job.seed, "job_id": str(submitted.job_id), "cluster": self.cluster,
                 "stage": stage, "folder": str(submitted.paths.folder.resolve()), "submitted": liveness.now(),
                 "spec": job.spec.to_dict()}
        if self.cluster == "local":  # its process, judged as a run's owner is (cvbench.runs.liveness)
            entry["owner"] = {**liveness.owner(), "pid": int(submitted.job_id), "process_start": None}
        return entry

    def _wait(self, pairs: list[tuple["Job", dict[str, Any]]], quiet: bool,
              what: str = "jobs") -> list[tuple[str, str]]:
        """Poll the jobs until none is queued or running, with a progress bar; each one's (state, detail)."""
        states: dict[int, tuple[str, str]] = {}
        with make_progress(quiet) as progress:
            task = progress.add_task(f"waiting for {what}", total=len(pairs), info="")
            while len(states) < len(pairs):
                pending = []
                for number, (job, entry) in enumerate(pairs):
                    if number in states:
                        continue
                    state, detail = job_state(entry)
                    pending.append(state)
                    if state in (FINISHED, FAILED):
                        states[number] = (state, detail)
                        progress.advance(task)
                        progress.console.log(_done_line(job, entry, state, detail))
                progress.update(task, info=f"{pending.count(RUNNING)} running, {pending.count(QUEUED)} queued")
                if len(states) < len(pairs):
                    time.sleep(self.poll_s)
        return [states[number] for number in range(len(pairs))]


def _done_line(job: "Job", entry: dict[str, Any], state: str, detail: str) -> str:
    """The line shown when a job ends: its first metrics, or why it failed."""
    if state == FAILED:
        return f"[red]{job.row} seed {job.seed} (job {entry['job_id']}) failed:[/] {detail}"
    try:
        record = RunFolder(detail).read_result()
        values = "  ".join(f"{k} {v:.2f}" for k, v in list(record.get("metrics", {}).items())[:3]) or detail
    except (CvbenchError, TypeError, ValueError):
        values = detail
    return f"{job.row} seed {job.seed} (job {entry['job_id']}): {values}"
