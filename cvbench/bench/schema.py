"""The grid file of ``cvbench bench``: its TOML schema, read and checked into a :class:`Bench`.

A grid file (the shipped ones are ``cvbench/bench/grids/*.toml``, run by
name: ``cvbench bench thesis_synthetic``; see ``docs/benchmarks.md``)::

    [bench]
    title = "..."
    seeds = [0, 1, 2, 3, 4]        # every row runs once per seed; rows of one seed share their data subsets
    margin = 2.0                   # optional: findings inside +-2 points read "no effect larger than 2"

    [defaults]                      # run options every row starts from (RunSpec / CLI names)
    preset = "default"

    [stages.standin]                # a prerequisite `cvbench pretrain`, run once; rows name it "@standin"
    pretrainer = "..."

    [[rows]]
    name = "exp12"                  # the thesis' experiment it mirrors; also its runs' --name (a label)
    tags = ["table-4.4"]            # optional: its runs' --tag labels
    mirrors = "Table 4.4, exp 12: ImageNet / ImageNet"
    base_init = "@standin"
    reported = { "R@1" = 3.28 }     # the thesis' numbers, shown beside the measured ones

    [[sweep]]                       # rows from the cartesian product: "head=A,pretrainer=none", ...
    head = ["A", "B"]
    pretrainer = ["none", "C"]

    [[findings]]                    # a thesis claim checked against the grid
    question = "..."
    baseline = "exp12"
    treatment = "exp16"
    expected = "higher"            # the claim's direction for the treatment (thesis = ... in the thesis grids)

    [report]
    compare = ["exp12", "exp16"]   # embedding figures side by side
    curve = { option = "train_fraction", series = { "stand-in" = ["le05", "exp12"], ... } }
    notes = "## What this world can tell ..."   # markdown; a TOML multi-line string in practice

Stages run once, in file order, and a stage may start from one above it.
Every table is validated by a pydantic model (``extra="forbid"``), the run
options by :class:`RunSpec`. :func:`load_bench` checks every name and type it
can without the plugins;
:mod:`cvbench.bench.scheduler` schedules the runs and :mod:`cvbench.bench.report`
writes the report.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pydantic

from ..errors import CvbenchError, SpecError
from ..spec import RunSpec, closest
from ..spec.config import options_model, read_toml
from ..spec.parse import show

ROW_KEYS = {"name", "mirrors", "reported", "seeds"}
START_OPTIONS = ("base_init", "pretrain_from", "ground_init", "aerial_init")
REPORTED = ("R@1", "R@5", "R@1%")
GRIDS = "grids"  # the folder beside this module that holds the shipped grids (package data)
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
    """A claim: the ``treatment`` row scores ``expected`` ("higher"/"lower") R@1 than ``baseline``.

    The claim is the thesis' (the thesis grids write ``thesis = ...``) or a
    paper's (``expected = ...``, the paper named in ``note``).
    """

    question: str
    baseline: str
    treatment: str
    expected: str
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
    metrics: list[str] | None = None  # the report's metric columns; None: every metric the runs recorded

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def label(self) -> str:
        """How a command names this grid: a shipped grid by its name, any other by its path."""
        return self.name if shipped_grids().get(self.name) == self.path else self.path.as_posix()


def shipped_grids() -> dict[str, Path]:
    """The grids that ship inside cvbench (``cvbench/bench/grids/*.toml``), by name."""
    folder = Path(__file__).resolve().parent / GRIDS
    return {path.stem: path for path in sorted(folder.glob("*.toml"))}


def find_grid(name: str | Path) -> Path:
    """A grid file: ``name`` as a path when that file exists, else the shipped grid of that name."""
    path = Path(name)
    if path.exists():  # a folder or an unreadable file is named when it is read
        return path
    shipped = shipped_grids()
    stem = path.name[:-5] if path.name.endswith(".toml") else path.name
    if path.parent == Path(".") and stem in shipped:
        return shipped[stem]
    close = closest(stem, list(shipped))
    hint = f"; did you mean {close!r}?" if close else ""
    raise CvbenchError(f"benchmark file not found: {path}, and no grid of that name ships with cvbench{hint} "
                       f"(shipped: {', '.join(shipped)}; `cvbench bench --list` shows them)")


def load_bench(path: str | Path) -> Bench:
    """Parse and check a grid file: unknown keys, duplicate names and unknown ``@stage`` references fail.

    Every error names the file and the section, row or key at fault (with the
    closest valid key for a typo); option values of the wrong type are
    caught here too, while values that do not resolve fail their row only.
    """
    path = find_grid(path)
    data = read_toml(path, "a TOML benchmark grid")
    sections = _validated(GridFile, data, path, "the file", SECTIONS, what="section")
    head = _validated(BenchTable, sections.bench, path, "[bench]", BENCH_KEYS)
    seeds = _seeds(head.seeds, f"{path}: [bench] seeds")
    defaults = _options(path, "[defaults]", sections.defaults)
    _no_seed(path, "[defaults]", defaults)
    stages = {name: _options(path, f"[stages.{name}]", options) for name, options in sections.stages.items()}
    rows = []
    for number, raw in enumerate([*sections.rows, *expand_sweeps(path, sections.sweep)], start=1):
        if "name" not in raw:
            raise CvbenchError(f"{path}: row {number} has no name")
        name = _text(path, f"row {number} name", raw["name"], empty=False)
        where = f"row {name}"
        if isinstance(raw.get("reported"), dict):
            _known(path, f"{where} reported", raw["reported"], REPORTED)
        row = _validated(row_model(), raw, path, where, (*sorted(ROW_KEYS), *RUN_OPTIONS), listed=sorted(ROW_KEYS))
        options = {k: v for k, v in raw.items() if k not in ROW_KEYS}
        _no_seed(path, where, options)
        spec_of({**defaults, **options}, f"{path} {where}")  # names and types; values are checked when it resolves
        rows.append(Row(name, options, _seeds(row.seeds or seeds, f"{path}: {where} seeds"), row.mirrors,
                        dict(row.reported)))
    for number, (name, options) in enumerate(stages.items()):
        spec_of({**defaults, **options}, f"{path} [stages.{name}]")
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
        raise CvbenchError(f"{path}: no [[rows]] and no [[sweep]]: nothing to run")
    for row in rows:
        for option in START_OPTIONS:
            value = row.options.get(option, defaults.get(option))
            if isinstance(value, str) and value.startswith("@") and value[1:] not in stages:
                raise CvbenchError(f"{path}: row {row.name} sets {option} = {value!r} but there is no "
                                   f"[stages.{value[1:]}]; stages: {', '.join(stages) or 'none'}")
    findings = []
    for number, raw in enumerate(sections.findings, start=1):
        finding = _validated(FindingTable, raw, path, f"finding {number}", (*FINDING_KEYS, "thesis"))
        if finding.thesis is not None and finding.expected is not None:
            raise CvbenchError(f"{path}: finding {number} gives both thesis and expected; they are one key (thesis "
                               "in the thesis grids)")
        expected = finding.expected or finding.thesis or ""
        if finding.baseline not in names or finding.treatment not in names or expected not in VERDICTS:
            raise CvbenchError(f"{path}: finding {finding.question!r} needs baseline and treatment row names and "
                               f"expected (or thesis) = {' or '.join(VERDICTS)}")
        findings.append(Finding(finding.question, finding.baseline, finding.treatment, expected, finding.note))
    report = _validated(ReportTable, sections.report, path, "[report]", REPORT_KEYS)
    if any(name not in names for name in report.compare):
        raise CvbenchError(f"{path}: [report] compare = {show(report.compare)}: expected a list of row names "
                           f"({', '.join(names)})")
    if report.metrics is not None and (not report.metrics or not all(report.metrics)):
        raise CvbenchError(f"{path}: [report] metrics = {show(report.metrics)}: expected a list of recorded metric "
                           "names such as [\"R@1\", \"R@5\"]")
    margin = head.margin
    if margin is not None and not 0 < margin < math.inf:
        raise CvbenchError(f"{path}: [bench] margin = {margin!r}: expected a positive number of R@1 points")
    return Bench(path, head.title if head.title is not None else path.stem, defaults, stages, rows, findings,
                 list(report.compare), margin, _curve(path, report.curve, names), report.notes, report.metrics)



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


SECTIONS = ("bench", "defaults", "stages", "rows", "sweep", "findings", "report")
SWEEP_KEYS = ("name", "mirrors", "seeds")
BENCH_KEYS = ("title", "seeds", "margin")
FINDING_KEYS = ("question", "baseline", "treatment", "expected", "note")
REPORT_KEYS = ("compare", "curve", "notes", "metrics")
RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(RunSpec))


class _Table(pydantic.BaseModel):
    """A table of a grid file: no key it does not declare, no value converted from another type."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)


class GridFile(_Table):
    """The sections of a grid file."""

    bench: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    stages: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    report: dict[str, Any] = {}


class BenchTable(_Table):
    """``[bench]``: the title, the seeds every row runs at, the margin of "no effect"."""

    title: str | None = None
    seeds: list[int] = [0]
    margin: float | None = None


class RowKeys(_Table):
    """The keys of a ``[[rows]]`` table besides its run options."""

    name: str
    mirrors: str = ""
    reported: dict[str, float] = {}  # keys checked against REPORTED, naming the closest
    seeds: list[int] | None = None


@functools.cache
def row_model() -> type[pydantic.BaseModel]:
    """A ``[[rows]]`` table: :class:`RowKeys` and the run options (typed by :class:`RunSpec`)."""
    return pydantic.create_model("GridRow", __base__=RowKeys, **{name: (Any, None) for name in RUN_OPTIONS
                                                                 if name not in RowKeys.model_fields})


class FindingTable(_Table):
    """A ``[[findings]]`` table; ``thesis`` is ``expected`` in the thesis grids."""

    question: str = ""
    baseline: str = ""
    treatment: str = ""
    expected: str | None = None
    thesis: str | None = None
    note: str = ""


class ReportTable(_Table):
    """``[report]``: embedding figures, a curve, notes and the metric columns."""

    compare: list[str] = []
    curve: Any = None  # checked by _curve, which names the rows it may hold
    notes: str = ""
    metrics: list[str] | None = None


class SweepKeys(_Table):
    """The keys of a ``[[sweep]]`` table besides its option lists."""

    name: str = ""
    mirrors: str = ""
    seeds: list[int] | None = None


@functools.cache
def sweep_model() -> type[pydantic.BaseModel]:
    """A ``[[sweep]]`` table: :class:`SweepKeys` and, for each option it varies, the non-empty list of its values."""
    values = (list[Any] | None, pydantic.Field(None, min_length=1))
    return pydantic.create_model("GridSweep", __base__=SweepKeys, **{name: values for name in RUN_OPTIONS
                                                                     if name not in SweepKeys.model_fields})


def expand_sweeps(path: Path, sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of every ``[[sweep]]``: one per combination of its option lists (their cartesian product).

    The first option varies slowest, as nested loops in file order. A row is
    named ``key=value,key=value`` (after the sweep's ``name`` and ``_`` when
    it has one), so the same file always gives the same names.
    """
    rows = []
    for number, raw in enumerate(sweeps, start=1):
        where = f"sweep {number}"
        sweep = _validated(sweep_model(), raw, path, where, (*SWEEP_KEYS, *RUN_OPTIONS), listed=SWEEP_KEYS)
        varied = {key: value for key, value in raw.items() if key not in SWEEP_KEYS}
        if not varied:
            raise CvbenchError(f"{path}: {where} varies no option; expected lists of values such as "
                               "epochs = [5, 10]")
        for values in itertools.product(*varied.values()):
            options = dict(zip(varied, values))
            label = ",".join(f"{key}={_label(value)}" for key, value in options.items())
            name = f"{sweep.name}_{label}" if sweep.name else label
            extra = {"seeds": sweep.seeds} if sweep.seeds is not None else {}
            rows.append({"name": re.sub(r"[^\w.@:+=,-]", "-", name), "mirrors": sweep.mirrors, **extra, **options})
    return rows


def _label(value: Any) -> str:
    """A sweep value as a row name shows it: ``true``, ``0.1``, ``soft_triplet+uniformity:0.1``, ``p:3``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "+".join(_label(item) for item in value)
    if isinstance(value, dict):
        return "+".join(f"{key}:{_label(item)}" for key, item in value.items())
    return str(value)


def _validated(model: type[pydantic.BaseModel], value: Any, path: Path, where: str, valid: Sequence[str],
               what: str = "key", listed: Sequence[str] | None = None) -> Any:
    """``value`` checked by ``model``; the first problem as one line naming the file, ``where`` and the key.

    Unknown keys are named first, with the closest valid one (``valid``), before any value's type.
    """
    if isinstance(value, dict):
        _known(path, where, value, valid, what, listed)
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        key = " ".join(str(part) for part in error["loc"])
        got = "" if error["type"] == "missing" else f" = {show(error['input'])}"
        reason = error["msg"][:1].lower() + error["msg"][1:]
        raise CvbenchError(f"{path}: {where}{' ' + key if key else ''}{got}: {reason}") from None


def _no_seed(path: Path, where: str, options: dict[str, Any]) -> None:
    """A row runs once per seed of ``seeds``; a ``seed`` option would be overridden by them, silently."""
    if "seed" in options:
        raise CvbenchError(f"{path}: {where} sets seed = {options['seed']!r}, but a grid runs each row once per "
                           f"seed of its seeds list: write seeds = [{options['seed']!r}] instead")


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


def _options(path: Path, where: str, value: Any) -> dict[str, Any]:
    """The run options of a ``[defaults]`` or ``[stages.NAME]`` table, their names checked."""
    options = dict(_table(path, where, value))
    _validated(options_model(), options, path, where, RUN_OPTIONS, what="option", listed=[])
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


def spec_of(options: dict[str, Any], where: str) -> RunSpec:
    """A row's or stage's options as a :class:`RunSpec`, an error naming ``where`` if they do not fit."""
    try:
        return RunSpec.from_dict(options)
    except (SpecError, TypeError) as exc:
        raise CvbenchError(f"{where}: {exc}") from None
