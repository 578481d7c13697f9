"""The grid file of ``cvbench bench``: its TOML schema, read and checked into a :class:`Bench`.

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
    expected = "higher"            # the claim's direction for the treatment (thesis = ... in the thesis grids)

    [report]
    compare = ["exp12", "exp16"]   # embedding figures side by side
    curve = { option = "train_fraction", series = { "stand-in" = ["le05", "exp12"], ... } }
    notes = "## What this world can tell ..."   # markdown; a TOML multi-line string in practice

Stages run once, in file order, and a stage may start from one above it.
:func:`load_bench` checks every name and type it can without the plugins;
:mod:`cvbench.bench.scheduler` schedules the runs and :mod:`cvbench.bench.report`
writes the report.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import CvbenchError, SpecError
from ..spec import RunSpec, closest

ROW_KEYS = {"name", "mirrors", "reported", "seeds"}
START_OPTIONS = ("base_init", "pretrain_from", "ground_init", "aerial_init")
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
    _no_seed(path, "[defaults]", defaults)
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
        _no_seed(path, where, options)
        spec_of({**defaults, **options}, f"{path} {where}")  # names and types; values are checked when it resolves
        reported = _table(path, f"{where} reported", raw.get("reported", {}))
        _known(path, f"{where} reported", reported, REPORTED)
        for metric, value in reported.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise CvbenchError(f"{path}: {where} reported {metric!r} = {value!r}: expected a number")
        rows.append(Row(name, options, _seeds(raw.get("seeds", seeds), f"{path}: {where} seeds"),
                        _text(path, f"{where} mirrors", raw.get("mirrors", "")),
                        {metric: float(value) for metric, value in reported.items()}))
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
        raise CvbenchError(f"{path}: no [[rows]]")
    for row in rows:
        for option in START_OPTIONS:
            value = row.options.get(option, defaults.get(option))
            if isinstance(value, str) and value.startswith("@") and value[1:] not in stages:
                raise CvbenchError(f"{path}: row {row.name} sets {option} = {value!r} but there is no "
                                   f"[stages.{value[1:]}]; stages: {', '.join(stages) or 'none'}")
    findings = []
    for number, raw in enumerate(_tables(path, "[[findings]]", data.get("findings", [])), start=1):
        _known(path, f"finding {number}", raw, (*FINDING_KEYS, "thesis"))
        if "thesis" in raw and "expected" in raw:
            raise CvbenchError(f"{path}: finding {number} gives both thesis and expected; they are one key (thesis "
                               "in the thesis grids)")
        raw = {**raw, "expected": raw.get("expected", raw.get("thesis", ""))}
        finding = Finding(*(_text(path, f"finding {number} {key}", raw.get(key, "")) for key in FINDING_KEYS))
        if finding.baseline not in names or finding.treatment not in names or finding.expected not in VERDICTS:
            raise CvbenchError(f"{path}: finding {finding.question!r} needs baseline and treatment row names and "
                               f"expected (or thesis) = {' or '.join(VERDICTS)}")
        findings.append(finding)
    report = _table(path, "[report]", data.get("report", {}))
    _known(path, "[report]", report, REPORT_KEYS)
    compare = report.get("compare", [])
    if not isinstance(compare, list) or any(name not in names for name in compare):
        raise CvbenchError(f"{path}: [report] compare = {compare!r}: expected a list of row names "
                           f"({', '.join(names)})")
    metrics = report.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not metrics
                                or not all(isinstance(name, str) and name for name in metrics)):
        raise CvbenchError(f"{path}: [report] metrics = {metrics!r}: expected a list of recorded metric names "
                           "such as [\"R@1\", \"R@5\"]")
    margin = head.get("margin")
    if margin is not None and (not isinstance(margin, (int, float)) or isinstance(margin, bool)
                               or not 0 < margin < math.inf):
        raise CvbenchError(f"{path}: [bench] margin = {margin!r}: expected a positive number of R@1 points")
    return Bench(path, _text(path, "[bench] title", head.get("title", path.stem)), defaults, stages, rows, findings,
                 list(compare), None if margin is None else float(margin), _curve(path, report.get("curve"), names),
                 _text(path, "[report] notes", report.get("notes", "")), metrics)


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
FINDING_KEYS = ("question", "baseline", "treatment", "expected", "note")
REPORT_KEYS = ("compare", "curve", "notes", "metrics")
RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(RunSpec))


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


def spec_of(options: dict[str, Any], where: str) -> RunSpec:
    """A row's or stage's options as a :class:`RunSpec`, an error naming ``where`` if they do not fit."""
    try:
        return RunSpec.from_dict(options)
    except (SpecError, TypeError) as exc:
        raise CvbenchError(f"{where}: {exc}") from None
