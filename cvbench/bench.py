"""Benchmark grids: a TOML file of named combinations, run over seeds, summarised as mean and spread.

A grid file (see ``benchmarks/*.toml`` and ``docs/benchmarks.md``)::

    [bench]
    title = "..."
    seeds = [0, 1, 2, 3, 4]        # every row runs once per seed; rows of one seed share their data subsets
    margin = 2.0                   # optional: findings inside +-2 points read "no effect larger than 2"

    [defaults]                      # run options every row starts from (RunSpec / CLI names)
    preset = "default"

    [stages.standin]                # a prerequisite `cvbench pretrain`, run once; rows name it "@standin"
    pretrainer = "..."

    [[rows]]
    name = "exp12"                  # the thesis' experiment it mirrors
    mirrors = "Table 4.4, exp 12: ImageNet / ImageNet"
    base_init = "@standin"
    reported = { "R@1" = 3.28 }     # the thesis' numbers, shown beside the measured ones

    [[findings]]                    # a thesis claim checked against the grid
    question = "..."
    baseline = "exp12"
    treatment = "exp16"
    thesis = "higher"              # what the thesis found for the treatment

    [report]
    compare = ["exp12", "exp16"]   # embedding figures side by side
    curve = { option = "train_fraction", series = { "stand-in" = ["le05", "exp12"], ... } }
    notes = "## What this world can tell ..."   # markdown; a TOML multi-line string in practice

Stages run once, in file order, and a stage may start from one above it.
The findings, evidence and curve of the report are in :mod:`cvbench.benchreport`.

A run is skipped when a finished run with the same resolved options (device
and workers aside) is already in the results folder, so rerunning a grid
only runs what is missing; a failing run is recorded and the grid goes on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import CvbenchError, SpecError
from .leaderboard import start_name
from .progress import log, make_progress
from .records import RESULT
from .runner import resolve_spec, run
from .spec import NO_AUGMENTATION, NO_PRETRAINER, RunSpec, closest

ROW_KEYS = {"name", "mirrors", "reported", "seeds"}
START_OPTIONS = ("base_init", "pretrain_from", "ground_init", "aerial_init")
ENVIRONMENT = {"device", "workers"}  # where a run ran, not what it is
REPORTED = ("R@1", "R@5", "R@1%")
VERDICTS = {"higher": 1, "lower": -1}


@dataclass
class Row:
    """One combination of the grid."""

    name: str
    options: dict[str, Any]
    seeds: list[int]
    mirrors: str = ""
    reported: dict[str, float] = field(default_factory=dict)


@dataclass
class Finding:
    """A thesis claim: the ``treatment`` row scores ``thesis`` ("higher"/"lower") R@1 than ``baseline``."""

    question: str
    baseline: str
    treatment: str
    thesis: str
    note: str = ""


@dataclass
class Bench:
    """A parsed grid file."""

    path: Path
    title: str
    defaults: dict[str, Any]
    stages: dict[str, dict[str, Any]]
    rows: list[Row]
    findings: list[Finding]
    compare: list[str]
    margin: float | None = None  # findings inside +-margin points read "no effect larger than margin"
    curve: dict[str, Any] | None = None  # {"option": name, "series": {label: [row, ...]}}
    notes: str = ""  # markdown appended to the report: what the grid's world can and cannot tell

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass
class Job:
    """One run of the grid: a row at a seed, or a stage."""

    row: str
    seed: int
    spec: RunSpec
    done: Path | None = None
    refs: dict[str, str] = field(default_factory=dict)  # start options that name a stage ("@standin")
    error: str | None = None  # options that do not resolve: the job fails without running


def load_bench(path: str | Path) -> Bench:
    """Parse and check a grid file: unknown keys, duplicate names and unknown ``@stage`` references fail.

    Every error names the file and the section, row or key at fault (with the
    closest valid key for a typo); option values of the wrong type are
    caught here too, while values that do not resolve fail their row only.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CvbenchError(f"benchmark file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise CvbenchError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); expected a TOML "
                           "benchmark grid") from None
    except OSError as exc:
        raise CvbenchError(f"{path}: cannot be read ({exc.strerror or exc}); expected a TOML benchmark grid") from None
    except tomllib.TOMLDecodeError as exc:
        raise CvbenchError(f"{path}: not valid TOML ({exc})") from None
    _known(path, "the file", data, SECTIONS, what="section")
    head = _table(path, "[bench]", data.get("bench", {}))
    _known(path, "[bench]", head, BENCH_KEYS)
    seeds = _seeds(head.get("seeds", [0]), f"{path}: [bench] seeds")
    defaults = _options(path, "[defaults]", data.get("defaults", {}))
    stages = {name: _options(path, f"[stages.{name}]", options)
              for name, options in _table(path, "[stages]", data.get("stages", {})).items()}
    rows = []
    for number, raw in enumerate(_tables(path, "[[rows]]", data.get("rows", [])), start=1):
        if "name" not in raw:
            raise CvbenchError(f"{path}: row {number} has no name")
        name = _text(path, f"row {number} name", raw["name"], empty=False)
        where = f"row {name}"
        _known(path, where, raw, (*sorted(ROW_KEYS), *RUN_OPTIONS), listed=sorted(ROW_KEYS))
        options = {k: v for k, v in raw.items() if k not in ROW_KEYS}
        _spec({**defaults, **options}, f"{path} {where}")  # names and types; values are checked when it resolves
        reported = _table(path, f"{where} reported", raw.get("reported", {}))
        _known(path, f"{where} reported", reported, REPORTED)
        for metric, value in reported.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise CvbenchError(f"{path}: {where} reported {metric!r} = {value!r}: expected a number")
        rows.append(Row(name, options, _seeds(raw.get("seeds", seeds), f"{path}: {where} seeds"),
                        _text(path, f"{where} mirrors", raw.get("mirrors", "")),
                        {metric: float(value) for metric, value in reported.items()}))
    for number, (name, options) in enumerate(stages.items()):
        _spec({**defaults, **options}, f"{path} [stages.{name}]")
        for option in START_OPTIONS:
            value = options.get(option)
            if isinstance(value, str) and value.startswith("@") and value[1:] not in list(stages)[:number]:
                raise CvbenchError(f"{path}: [stages.{name}] sets {option} = {value!r}, but a stage can only start "
                                   f"from a stage above it; above it: {', '.join(list(stages)[:number]) or 'none'}")
    names = [row.name for row in rows]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CvbenchError(f"{path}: row names must be unique; repeated: {', '.join(duplicates)}")
    if not rows:
        raise CvbenchError(f"{path}: no [[rows]]")
    for row in rows:
        for option in START_OPTIONS:
            value = row.options.get(option, defaults.get(option))
            if isinstance(value, str) and value.startswith("@") and value[1:] not in stages:
                raise CvbenchError(f"{path}: row {row.name} sets {option} = {value!r} but there is no "
                                   f"[stages.{value[1:]}]; stages: {', '.join(stages) or 'none'}")
    findings = []
    for number, raw in enumerate(_tables(path, "[[findings]]", data.get("findings", [])), start=1):
        _known(path, f"finding {number}", raw, FINDING_KEYS)
        finding = Finding(*(_text(path, f"finding {number} {key}", raw.get(key, "")) for key in FINDING_KEYS))
        if finding.baseline not in names or finding.treatment not in names or finding.thesis not in VERDICTS:
            raise CvbenchError(f"{path}: finding {finding.question!r} needs baseline and treatment row names and "
                               f"thesis = {' or '.join(VERDICTS)}")
        findings.append(finding)
    report = _table(path, "[report]", data.get("report", {}))
    _known(path, "[report]", report, REPORT_KEYS)
    compare = report.get("compare", [])
    if not isinstance(compare, list) or any(name not in names for name in compare):
        raise CvbenchError(f"{path}: [report] compare = {compare!r}: expected a list of row names "
                           f"({', '.join(names)})")
    margin = head.get("margin")
    if margin is not None and (not isinstance(margin, (int, float)) or isinstance(margin, bool)
                               or not 0 < margin < math.inf):
        raise CvbenchError(f"{path}: [bench] margin = {margin!r}: expected a positive number of R@1 points")
    return Bench(path, _text(path, "[bench] title", head.get("title", path.stem)), defaults, stages, rows, findings,
                 list(compare), None if margin is None else float(margin), _curve(path, report.get("curve"), names),
                 _text(path, "[report] notes", report.get("notes", "")))


def _curve(path: Path, value: Any, names: list[str]) -> dict[str, Any] | None:
    """``[report] curve = { option = "train_fraction", series = { label = [row, ...] } }``, checked."""
    if value is None:
        return None
    expected = ("expected { option = \"<run option>\", series = { <label> = [<row>, ...], ... } } with row names "
                f"from {', '.join(names)}")
    if not isinstance(value, dict) or set(value) != {"option", "series"} or value["option"] not in RUN_OPTIONS \
            or not isinstance(value["series"], dict) or not value["series"] \
            or not all(isinstance(rows, list) and rows and all(row in names for row in rows)
                       for rows in value["series"].values()):
        raise CvbenchError(f"{path}: [report] curve = {value!r}: {expected}")
    return {"option": value["option"], "series": {str(k): list(v) for k, v in value["series"].items()}}


SECTIONS = ("bench", "defaults", "stages", "rows", "findings", "report")
BENCH_KEYS = ("title", "seeds", "margin")
FINDING_KEYS = ("question", "baseline", "treatment", "thesis", "note")
REPORT_KEYS = ("compare", "curve", "notes")
RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(RunSpec))


def _known(path: Path, where: str, table: dict[str, Any], valid: Sequence[str], what: str = "key",
           listed: Sequence[str] | None = None) -> None:
    """Fail naming the first key of ``table`` not in ``valid``, with the closest valid one."""
    unknown = [key for key in table if key not in valid]
    if not unknown:
        return
    close = closest(unknown[0], list(valid))
    hint = f"; did you mean {close!r}?" if close else "."
    options = "an option of `cvbench run` (its name with underscores for dashes)"
    expected = ", ".join(valid) if listed is None else f"{', '.join(listed)} or {options}" if listed else options
    raise CvbenchError(f"{path}: {where} has unknown {what} {unknown[0]!r}{hint} Expected {expected}")


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CvbenchError(f"{path}: {where} = {value!r}: expected a table")
    return value


def _tables(path: Path, where: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise CvbenchError(f"{path}: {where} must be an array of tables, each written {where}")
    return value


def _options(path: Path, where: str, value: Any) -> dict[str, Any]:
    """The run options of a ``[defaults]`` or ``[stages.NAME]`` table, their names checked."""
    options = dict(_table(path, where, value))
    _known(path, where, options, RUN_OPTIONS, what="option", listed=[])
    return options


def _text(path: Path, where: str, value: Any, empty: bool = True) -> str:
    if not isinstance(value, str) or not (empty or value.strip()):
        raise CvbenchError(f"{path}: {where} = {value!r}: expected {'a' if empty else 'a non-empty'} string")
    return value


def _seeds(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in value):
        raise CvbenchError(f"{where}: expected a non-empty list of integers, got {value!r}")
    return list(value)


def stage_dir(runs_dir: Path, name: str) -> Path:
    return runs_dir / "stages" / name


def _spec(options: dict[str, Any], where: str) -> RunSpec:
    try:
        return RunSpec.from_dict(options)
    except (SpecError, TypeError) as exc:
        raise CvbenchError(f"{where}: {exc}") from None


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
        raw = {**bench.defaults, **row.options}
        refs = {k: v for k, v in raw.items() if k in START_OPTIONS and isinstance(v, str) and v.startswith("@")}
        options = _substitute(raw, stage_runs)
        for seed in row.seeds:
            jobs.append(Job(row.name, seed, _spec({**options, "seed": seed}, f"{bench.path} row {row.name}"),
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
    """(resolved spec, run folder) of every finished run below ``folder``."""
    found = []
    for path in sorted(folder.rglob(RESULT)) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("status") == "finished" and isinstance(record.get("spec"), dict):
            found.append((identity(record["spec"], record.get("stage", "run")), path.parent))
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
    """What ``run_bench`` did: runs made, runs already there, failures (row, seed, error)."""

    ran: int = 0
    skipped: int = 0
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    leaderboard: Path | None = None


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
        spec = _spec(_substitute(raw, {n: j.done for n, j in jobs.items()}), f"{bench.path} [stages.{name}]")
        jobs[name] = settle(Job(f"@{name}", spec.seed, spec, refs=refs), done)
    return jobs


def run_bench(bench: Bench | str | Path, runs_dir: str | Path | None = None, only: Sequence[str] | None = None,
              quiet: bool = False) -> BenchOutcome:
    """Run every missing stage and (row, seed) of a grid, then write its ``leaderboard.md``.

    A stage that fails stops the grid (its rows need it); a row that fails,
    before or during its run, is recorded in the outcome and the grid goes on.
    """
    bench = bench if isinstance(bench, Bench) else load_bench(bench)
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir(bench)
    from .benchreport import write_report  # the report reads the grid through this module

    outcome = BenchOutcome()
    for name in bench.stages:
        job = settled_stages(bench, finished_runs(runs_dir))[name]  # the stages above it may have just run
        if job.error is not None:
            raise CvbenchError(f"{bench.path} [stages.{name}]: {job.error}")
        if job.done is None:
            log(f"[bold]bench[/] {bench.name}: stage @{name}", quiet)
            job.done = run(job.spec, stage_dir(runs_dir, name), quiet=True, stage="pretrain", finetune_stage=False)
            outcome.ran += 1
    _, jobs = plan(bench, runs_dir, only)
    for job in jobs:
        if job.error is not None:
            outcome.failed.append((job.row, job.seed, job.error))
    todo = [job for job in jobs if job.done is None and job.error is None]
    outcome.skipped = sum(job.done is not None for job in jobs)
    log(f"[bold]bench[/] {bench.name}: {len(jobs)} runs, {outcome.skipped} already finished, {len(todo)} to run "
        f"into {runs_dir}", quiet)
    with make_progress(quiet) as progress:
        task = progress.add_task(f"bench {bench.name}", total=len(todo), info="")
        for job in todo:
            progress.update(task, info=f"{job.row} seed {job.seed}")
            try:
                folder = run(job.spec, runs_dir / job.row, quiet=True)
                record = json.loads((folder / RESULT).read_text())
                outcome.ran += 1
                progress.console.log(f"{job.row} seed {job.seed}: R@1 {record['metrics']['R@1']:.2f} "
                                     f"({record['timings']['total_s']:.0f} s)")
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a failing run is recorded and the grid goes on
                outcome.failed.append((job.row, job.seed, f"{type(exc).__name__}: {exc}"))
                progress.console.log(f"[red]{job.row} seed {job.seed} failed:[/] {exc}")
            progress.advance(task)
    outcome.leaderboard = write_report(bench, runs_dir, runs_dir / "leaderboard.md")
    return outcome


def default_runs_dir(bench: Bench) -> Path:
    """``runs/bench/<file stem>``: where a grid's runs go unless ``--runs-dir`` says otherwise."""
    return Path("runs") / "bench" / bench.name


# ---------------------------------------------------------------- how a row is described


def describe(spec: RunSpec, refs: dict[str, str] | None = None) -> str:
    """A short text of what a row varies: pre-training, inits, loss, augmentation (stages as ``@name``)."""
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
    losses = " + ".join(name if weight == 1 else f"{weight:g}*{name}" for name, weight in spec.loss)
    parts.append(f"{spec.head}, {losses}")
    if spec.finetune_aug != NO_AUGMENTATION:
        parts.append(f"aug {spec.finetune_aug}")
    if spec.train_fraction < 1:
        parts.append(f"{spec.train_fraction:.0%} of the labels")
    return "; ".join(parts)


def _start_text(start: str) -> str:
    return start if start in ("random", "imagenet", "auto", "pretrained") else start_name(start)
