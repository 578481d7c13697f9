"""Benchmark grids run: each row of a grid file at each seed, and its stages, scheduled once each.

The grid file is read by :mod:`cvbench.bench.schema` (its format is there and
in ``docs/benchmarks.md``); the report is :mod:`cvbench.bench.report`'s.
Stages run once, in file order, before the rows that start from them.

A run is skipped when a finished run with the same resolved options (device
and workers aside) is already in the results folder, so rerunning a grid
only runs what is missing; a failing run is recorded and the grid goes on.
Who runs them, here or as cluster jobs, is a launcher's
(:mod:`cvbench.bench.launchers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import CvbenchError
from ..progress import counted, log
from ..runs.assemble import resolve_spec
from ..runs.folder import RunFolder
from ..runs.leaderboard import start_name
from ..spec import NO_AUGMENTATION, NO_PRETRAINER, RunSpec
from ..spec.run_spec import from_record
from .launchers import Launcher, LocalLauncher
from .schema import START_OPTIONS, Bench, load_bench, spec_of

ENVIRONMENT = {"device", "workers", "loggers", "logger_options",  # where a run ran and was tracked, not what it is
               "name", "tags"}  # and its labels (cvbench.spec.LABELS): a relabelled row is not run again


@dataclass
class Job:
    """One run of the grid: a row at a seed, or a stage."""

    row: str
    seed: int
    spec: RunSpec
    done: Path | None = None
    refs: dict[str, str] = field(default_factory=dict)  # start options that name a stage ("@standin")
    error: str | None = None  # options that do not resolve: the job fails without running


def stage_dir(runs_dir: Path, name: str) -> Path:
    return runs_dir / "stages" / name


def _substitute(options: dict[str, Any], stage_runs: dict[str, Path | None]) -> dict[str, Any]:
    """``@stage`` start values replaced by the stage's run folder (``imagenet`` stands in while it has none)."""
    out = dict(options)
    for option in START_OPTIONS:
        value = out.get(option)
        if isinstance(value, str) and value.startswith("@"):
            folder = stage_runs.get(value[1:])
            out[option] = str(folder) if folder is not None else "imagenet"
    return out


def row_jobs(bench: Bench, stage_runs: dict[str, Path | None], only: Sequence[str] | None = None) -> list[Job]:
    """Every (row, seed) of the grid, its spec resolved against the stages' run folders."""
    chosen = [row for row in bench.rows if not only or row.name in only]
    missing = sorted(set(only or ()) - {row.name for row in bench.rows})
    if missing:
        raise CvbenchError(f"--only {', '.join(missing)}: no such row in {bench.path}; rows: "
                           f"{', '.join(row.name for row in bench.rows)}")
    jobs = []
    for row in chosen:
        raw = {**bench.defaults, **row.options, "name": row.name}  # the row's name labels its runs (--name)
        refs = {k: v for k, v in raw.items() if k in START_OPTIONS and isinstance(v, str) and v.startswith("@")}
        options = _substitute(raw, stage_runs)
        for seed in row.seeds:
            jobs.append(Job(row.name, seed, spec_of({**options, "seed": seed}, f"{bench.path} row {row.name}"),
                            refs=refs))
    return jobs


def identity(spec: dict[str, Any], stage: str = "run") -> dict[str, Any]:
    """What makes two runs the same experiment: the resolved options without where they ran, and the stage kind.

    The kind matters: a ``[stages]`` pre-training and a row that pre-trains
    with the same options share a spec, but only the row fine-tunes and
    evaluates, so neither may stand in for the other.
    """
    return {**{k: v for k, v in spec.items() if k not in ENVIRONMENT}, STAGE_KEY: stage}


STAGE_KEY = "@stage"  # no run option starts with "@"


def finished_runs(folder: Path) -> list[tuple[dict[str, Any], Path]]:
    """(resolved spec, run folder) of every finished run below ``folder``.

    A spec written before an option existed reads with that option at its
    fallback (the behaviour the run had), so adding an option to cvbench does
    not make a grid run its finished rows again.
    """
    found = []
    for candidate in RunFolder.all_under(folder):
        record = candidate.record()
        if record.get("status") != "finished" or not isinstance(record.get("spec"), dict):
            continue
        try:
            spec = from_record(record["spec"]).to_dict()
        except CvbenchError:
            continue  # an option this cvbench no longer knows: not the same experiment
        found.append((identity(spec, record.get("stage", "run")), candidate.path))
    return found


def settle(job: Job, done: list[tuple[dict[str, Any], Path]]) -> Job:
    """Resolve the job's spec and find a finished run of it; options that do not resolve become ``error``."""
    try:
        job.spec = resolve_spec(job.spec)
    except CvbenchError as exc:
        job.error = str(exc)
        return job
    key = identity(job.spec.to_dict(), "pretrain" if job.row.startswith("@") else "run")
    job.done = next((folder for spec, folder in done if spec == key), None)
    return job


@dataclass
class BenchOutcome:
    """What ``run_bench`` did: runs made, runs already there, failures (row, seed, error), and the stage whose
    job the rows wait for (a launcher that does not wait; the launcher lists the jobs it submitted)."""

    ran: int = 0
    skipped: int = 0
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    leaderboard: Path | None = None
    waiting_for: str | None = None  # the stage whose job must finish before the rows are submitted


def plan(bench: Bench, runs_dir: Path, only: Sequence[str] | None = None) -> tuple[dict[str, Job], list[Job]]:
    """Stage and row jobs, resolved, each with the finished run that already covers it (if any)."""
    done = finished_runs(runs_dir)
    stages = settled_stages(bench, done)
    rows = [settle(job, done) for job in row_jobs(bench, {n: j.done for n, j in stages.items()}, only)]
    return stages, rows


def settled_stages(bench: Bench, done: list[tuple[dict[str, Any], Path]]) -> dict[str, Job]:
    """The prerequisite pre-training of each stage (seed 0 unless it says otherwise), in file order, resolved,
    each with the finished run that already covers it (if any); a stage may start from one above it."""
    jobs: dict[str, Job] = {}
    for name, options in bench.stages.items():
        raw = {**bench.defaults, **options}
        refs = {k: v for k, v in raw.items() if k in START_OPTIONS and isinstance(v, str) and v.startswith("@")}
        spec = spec_of(_substitute(raw, {n: j.done for n, j in jobs.items()}), f"{bench.path} [stages.{name}]")
        jobs[name] = settle(Job(f"@{name}", spec.seed, spec, refs=refs), done)
    return jobs


def run_bench(bench: Bench | str | Path, runs_dir: str | Path | None = None, only: Sequence[str] | None = None,
              quiet: bool = False, launcher: Launcher | None = None) -> BenchOutcome:
    """Run every missing stage and (row, seed) of a grid, then write its ``leaderboard.md``.

    ``launcher`` (:mod:`cvbench.bench.launchers`; this process by default)
    runs or submits them. A stage that fails stops the grid (its rows need
    it); a row that fails, before or during its run, is recorded in the
    outcome and the grid goes on. A launcher that does not wait returns once
    it submitted what it could: the rows wait for a missing stage, so a
    grid with one is submitted again once the stage finished; the
    leaderboard is written by a run that waits.
    """
    bench = bench if isinstance(bench, Bench) else load_bench(bench)
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir(bench)
    launcher = launcher or LocalLauncher()
    launcher.check(runs_dir)  # before anything runs or is submitted
    from .report import write_report

    outcome = BenchOutcome()
    for name in bench.stages:
        job = settled_stages(bench, finished_runs(runs_dir))[name]  # the stages above it may have just run
        if job.error is not None:
            raise CvbenchError(f"{bench.path} [stages.{name}]: {job.error}")
        if job.done is None:
            log(f"[bold]bench[/] {bench.name}: stage @{name}", quiet)
            job.done = launcher.run_stage(job, runs_dir, stage_dir(runs_dir, name), quiet)
            if job.done is None:  # submitted; the rows start from it, so they wait for a later call
                outcome.waiting_for = f"@{name}"
                return outcome
            outcome.ran += 1
    _, jobs = plan(bench, runs_dir, only)
    for job in jobs:
        if job.error is not None:
            outcome.failed.append((job.row, job.seed, job.error))
    todo = [job for job in jobs if job.done is None and job.error is None]
    outcome.skipped = sum(job.done is not None for job in jobs)
    log(f"[bold]bench[/] {bench.name}: {counted(len(jobs), 'run')}, {outcome.skipped} already finished, "
        f"{len(todo)} to run "
        f"into {runs_dir}", quiet)
    launcher.run_rows(todo, runs_dir, outcome, quiet)
    if launcher.waits:
        outcome.leaderboard = write_report(bench, runs_dir, runs_dir / "leaderboard.md")
    return outcome


def default_runs_dir(bench: Bench) -> Path:
    """``runs/bench/<file stem>``: where a grid's runs go unless ``--runs-dir`` says otherwise."""
    return Path("runs") / "bench" / bench.name


# ---------------------------------------------------------------- how a row is described


def describe(spec: RunSpec, refs: dict[str, str] | None = None) -> str:
    """A short text of what a row varies: pre-training, inits, backbone use, loss, augmentation, batches and
    optimiser where not the thesis' (stages as ``@name``)."""
    refs = refs or {}

    def start(option: str) -> str:
        return refs.get(option) or _start_text(getattr(spec, option))

    if "pretrain_from" not in refs and "base_init" in refs and spec.pretrain_from == spec.base_init:
        refs = {**refs, "pretrain_from": refs["base_init"]}  # pretrain_from defaults to base_init
    parts = []
    if spec.pretrainer != NO_PRETRAINER:
        parts.append(f"{spec.pretrainer} {spec.pretrain_branches} on {spec.pretrain_data} from {start('pretrain_from')}")
    parts.append(f"init {start('base_init')}")
    for branch in ("ground", "aerial"):
        if getattr(spec, f"{branch}_init") != "auto":
            parts.append(f"{branch} {start(f'{branch}_init')}")
    if spec.shared_backbone or spec.freeze_backbone:
        parts.append(" ".join(word for word, on in (("shared", spec.shared_backbone),
                                                     ("frozen", spec.freeze_backbone)) if on) + " backbone")
    losses = " + ".join(name if weight == 1 else f"{weight:g}*{name}" for name, weight in spec.loss)
    parts.append(f"{spec.head}, {losses}" if spec.epochs else f"{spec.head}, zero-shot (no fine-tuning)")
    if spec.finetune_aug != NO_AUGMENTATION:
        parts.append(f"aug {spec.finetune_aug}")
    if spec.sampler != "conflict_free":
        parts.append(f"batches {spec.sampler}")
    if (spec.optimizer, spec.schedule) != ("adam", "constant"):
        parts.append(f"{spec.optimizer}, {spec.schedule} lr")
    if spec.train_fraction < 1:
        parts.append(f"{spec.train_fraction:.0%} of the labels")
    view = spec.field_of_view()
    if not view.is_identity:
        parts.append(f"view {view.degrees:g}° {view.orientation}")
    if spec.eval_dataset not in (None, spec.dataset) or spec.eval_split not in (None, spec.split):
        parts.append(f"evaluated on {spec.eval_dataset or spec.dataset}/{spec.eval_split or '(first split)'}")
    return "; ".join(parts)


def _start_text(start: str) -> str:
    return start if start in ("random", "imagenet", "auto", "pretrained") else start_name(start)
