"""The leaderboard: every ``result.json`` under a runs folder, one row per run, ranked by R@1.

Result records are the only source of truth. The metric columns are the
metrics the runs recorded (``--metric``), built-in or from a plugin, in the
order they first appear; every option the runs differ in is a column too
(:mod:`cvbench.runs.run_settings`), and the labels ``name`` and ``tags``
are columns wherever a run has them. Finished runs are ranked within their
section (dataset, split, evaluation dataset, query view: :func:`sections`),
never across; running, failed and interrupted runs are listed apart and
never as results. ``--group-by`` merges seeds (:mod:`cvbench.runs.seed_merge`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CvbenchError
from ..evaluation.metrics import one_percent_k
from ..spec import LABELS
from .folder import CHECKPOINTS, RunFolder
from .liveness import status_text
from .run_settings import NO_VALUE, OPTION_FIELDS, differing, group_key, option_column, setting
from .seed_merge import INTERVAL_SUFFIX, merge_seeds

RANK_BY = "R@1"  # the thesis' headline number; a board without it ranks by its first metric
WHOLE = ("seed", "queries", "gallery")  # whole numbers, some missing (an unreadable record)
GROUP = "group key"  # to_frame(group_by=...): the grouped options' values of a run, merged away by sections()
FORMATS = ("table", "markdown", "csv", "json")


def load_records(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every readable result record below ``runs_dir`` (unreadable ones become failed rows)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise CvbenchError(f"runs folder not found: {runs_dir} (runs write there with --runs-dir)")
    return [folder.record() for folder in RunFolder.all_under(runs_dir)]


def _pretraining(spec: dict[str, Any]) -> str:
    if spec.get("pretrainer", "none") == "none":
        return "-"
    start = spec.get("pretrain_from")
    mark = "*" if start == "imagenet" else "" if start in (None, "random") else f"* ({start_name(start)})"
    return f"{spec.get('pretrain_branches')} {spec.get('pretrain_data')}{mark}"


def start_name(start: str) -> str:
    """A checkpoint start as the run it came from: ``RUN (file)`` for a file in a run's ``checkpoints/``.

    Every pre-training run names its checkpoints alike, so the file name
    alone does not say which run made the weights; the run folder does.
    """
    path = Path(start)
    if path.suffix != ".safetensors":
        return path.parent.name if path.name == CHECKPOINTS else path.name
    return f"{path.parent.parent.name} ({path.name})" if path.parent.name == CHECKPOINTS else path.name


def _init(spec: dict[str, Any], branch: str) -> str:
    init = spec.get(f"{branch}_init", "auto")
    pretrained = spec.get("pretrainer", "none") != "none" and spec.get("pretrain_branches") in (branch, "both")
    if init == "auto":
        init = "pretrained" if pretrained else spec.get("base_init", "random")
    return init if init in ("random", "imagenet", "pretrained") else start_name(init)


def _loss(spec: dict[str, Any]) -> str:
    """The fine-tuning objective; ``none (zero-shot)`` for a run that never fine-tuned (``--epochs 0``)."""
    if spec.get("epochs") == 0:
        return "none (zero-shot)"
    terms = spec.get("loss") or []
    return " + ".join(name if float(weight) == 1.0 else f"{weight:g}*{name}" for name, weight in terms)


def _backbone(spec: dict[str, Any]) -> str | None:
    """The backbone's name, marked ``shared`` (one for both views) and ``frozen`` (start weights kept)."""
    marks = [mark for mark, key in (("shared", "shared_backbone"), ("frozen", "freeze_backbone")) if spec.get(key)]
    name = spec.get("backbone")
    return f"{name} ({', '.join(marks)})" if marks and name else name


def _sampler(spec: dict[str, Any]) -> str:
    """The batch sampler (records from before samplers were plugins: the conflict-free one they used)."""
    return spec.get("sampler") or "conflict_free"


def _labels(spec: dict[str, Any]) -> str:
    """The share of the labelled training pairs fine-tuning saw (``--train-fraction``; records without it: all)."""
    fraction = spec.get("train_fraction")
    return "100%" if fraction is None else f"{float(fraction) * 100:g}%"


LEGACY_CONVENTIONS = {"ties": "optimistic", "one_percent": "floor", "hit_rate": "paper", "fov": 360.0,
                      "orientation": "known"}
"""What records written before cvbench named its conventions (no ``"conventions"`` key) were computed under:
ties to the truth, R@1% at k = max(1, M // 100), the hit rate's top-1 by the lowest index among ties."""

CONVENTION_COLUMNS = {"ties": "ties", "one_percent": "R@1% k", "hit_rate": "hit rate"}
PROTOCOL = ("view", *CONVENTION_COLUMNS.values())  # a column each; where every run agrees, a footer line instead


def conventions_of(record: dict[str, Any]) -> dict[str, Any]:
    """The conventions and query view a record's numbers follow (:data:`LEGACY_CONVENTIONS` for old records)."""
    return {**LEGACY_CONVENTIONS, **(record.get("conventions") or {})}


def _view(conventions: dict[str, Any]) -> str:
    return f"{float(conventions['fov']):g}° {conventions['orientation']}"


def protocol_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The :data:`PROTOCOL` columns of a record: its query view and conventions, as a table shows them."""
    conventions = conventions_of(record)
    return {"view": _view(conventions), **{column: conventions[key] for key, column in CONVENTION_COLUMNS.items()}}


def conventions_line(shared: dict[str, Any]) -> str:
    """One sentence stating the protocol columns every run of a table shares (``{}``: nothing to state)."""
    if not shared:
        return ""
    words = {"view": "query view {}", "ties": "ties {}", "R@1% k": "R@1% at k = {}", "hit rate": "hit rate {}"}
    parts = [words[column].format(K_RULES.get(value, value) if column == "R@1% k" else value)
             for column, value in shared.items()]
    return "Conventions: " + "; ".join(parts) + " (docs/metrics.md)."


def _datasets(record: dict[str, Any], spec: dict[str, Any]) -> str:
    """``dataset/split``, and ``-> dataset/split`` of the evaluation where the run transferred to another one."""
    if not spec.get("dataset"):
        return ""  # an unreadable record: its error says why, "None" would read as a dataset's name
    trained = f"{spec.get('dataset')}/{record.get('split') or spec.get('split') or ''}".rstrip("/")
    evaluated = record.get("evaluated_on") or {}
    other = f"{evaluated.get('dataset')}/{evaluated.get('split')}"
    return trained if not evaluated or other == trained else f"{trained} -> {other}"


UNIFORMITY_KINDS = ("ground", "satellite", "all")
SETTINGS = ("run", *LABELS, "status", "pretrainer", "pretraining", "ground init", "aerial init", "backbone", "head",
            "loss", "sampler", "labels", "dataset", "seed", *PROTOCOL, *map(option_column, OPTION_FIELDS), "queries",
            "gallery", "wall time (s)", "warnings", "error", GROUP)  # every column that is not a metric


def _uniformity(record: dict[str, Any]) -> dict[str, float | None]:
    """Columns ``U ground``... (after fine-tuning) and ``U ground before``... (eq 3.6-3.8)."""
    values = record.get("uniformity") or {}
    columns = {}
    for state, suffix in (("after", ""), ("before", " before")):
        for kind in UNIFORMITY_KINDS:
            columns[f"U {kind}{suffix}"] = (values.get(state) or {}).get(kind)
    return columns


def _label(record: dict[str, Any], label: str) -> str | None:
    """A run's ``--name`` or its ``--tag`` values (``a,b``), None where it has none."""
    text = setting(record, label) if record.get("spec") else NO_VALUE
    return None if text == NO_VALUE else text


def _is_result(record: dict[str, Any]) -> bool:
    return record.get("status") == "finished" and bool(record.get("metrics")) and record.get("stage") != "pretrain"


def to_frame(records: list[dict[str, Any]], uniformity: bool = False,
             group_by: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per record with the columns a reader compares; sorted by R@1 (best first).

    Besides the summary columns, every other option in which the finished
    runs differ gets a column named as the option (``epochs``, ``ground
    size``; :mod:`cvbench.runs.run_settings`). With ``uniformity``, also the
    uniformity of the validation embeddings after and before fine-tuning
    (lower is more uniform). With ``group_by`` (option names), a column
    ``group key`` holds each run's values of them, for :func:`sections` to
    merge the seeds of. Finished ``cvbench pretrain`` runs are left out: they
    have checkpoints, not results.
    """
    rows = []
    names = metric_names(records)
    options = differing([record for record in records if _is_result(record)])
    for record in records:
        if record.get("stage") == "pretrain" and record.get("status") == "finished":
            continue  # a finished `cvbench pretrain` made checkpoints, not retrieval results
        spec = record.get("spec", {})
        metrics = record.get("metrics", {}) or {}
        row = {
            "run": record.get("run"),
            **{label: _label(record, label) for label in LABELS},
            "status": status_text(record),  # a dead run names the command that resumes it
            "pretrainer": spec.get("pretrainer", "none") if spec else "",
            "pretraining": _pretraining(spec),
            "ground init": _init(spec, "ground") if spec else "",
            "aerial init": _init(spec, "aerial") if spec else "",
            "backbone": _backbone(spec),
            "head": spec.get("head"),
            "loss": _loss(spec),
            "sampler": _sampler(spec),
            "labels": _labels(spec),
            **{option_column(name): setting(record, name) for name in options},
            "dataset": _datasets(record, spec),
            "seed": spec.get("seed"),
            **protocol_columns(record),
            **{name: metrics.get(name) for name in names},
            **(_uniformity(record) if uniformity else {}),
            "queries": record.get("num_queries"),
            "gallery": record.get("num_references"),
            "wall time (s)": (record.get("timings") or {}).get("total_s"),
            "warnings": "; ".join(record.get("warnings") or []) or None,
            "error": record.get("error"),
        }
        if group_by is not None:
            row[GROUP] = group_key(record, group_by)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.astype({column: "Int64" for column in WHOLE if column in frame})  # 500, not 500.0 beside a blank
    rank_by = _rank_by(names)
    frame = frame.sort_values([*rank_by, "run"], ascending=[False] * len(rank_by) + [True], na_position="last",
                              kind="stable")
    if (frame["labels"] == "100%").all():  # no run fine-tuned on a share of its pairs (--train-fraction)
        frame = frame.drop(columns=["labels"])
    if (frame["sampler"] == "conflict_free").all():  # every run batched as the thesis did
        frame = frame.drop(columns=["sampler"])
    frame = frame.drop(columns=[label for label in LABELS if frame[label].isna().all()])  # no run labelled so
    return frame.reset_index(drop=True)


def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Every metric name the records hold, in the order of first appearance (a record keeps its metrics' order)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record.get("metrics") or {}))
    return list(names)


def split_finished(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(finished runs with metrics, everything else)."""
    if frame.empty:
        return frame, frame
    done = (frame["status"] == "finished") & frame[measured_columns(frame)].notna().any(axis=1)
    finished = frame[done].drop(columns=["status", "error"]).reset_index(drop=True)
    others = frame[~done][["run", "status", "pretrainer", "head", "dataset", "error"]].reset_index(drop=True)
    return finished, others


def lift_protocol(finished: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(the table without the protocol columns every run shares, the line that states those instead).

    A reader sees under every table the conventions its numbers follow
    (``docs/metrics.md``); one that differs between runs stays a column.
    """
    if finished.empty:
        return finished, ""
    shared = {column: finished[column].iloc[0] for column in PROTOCOL
              if column in finished and finished[column].nunique(dropna=False) == 1}
    if "warnings" in finished and finished["warnings"].isna().all():
        finished = finished.drop(columns=["warnings"])
    return finished.drop(columns=list(shared)), conventions_line(shared)


@dataclass
class Section:
    """One ranking: the finished runs (or merged settings) of one dataset, split and query view, best first."""

    title: str
    table: pd.DataFrame


SECTION_BY = ("dataset", "view")
"""Numbers from different datasets, splits, evaluation datasets or query views are never ranked in one order."""


def measured_columns(frame: pd.DataFrame) -> list[str]:
    """The metric columns of a leaderboard frame (built-in or a plugin's), in their order."""
    return [column for column in frame.columns if column not in SETTINGS and not column.startswith("U ")
            and not column.endswith(INTERVAL_SUFFIX) and column not in ("n", "seeds", "runs")]


def select_metrics(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The frame with only the metric columns ``names`` (``--metrics``), whatever else the runs measured.

    Settings, uniformity and status columns stay. A name no listed run
    measured is an error listing the ones they did. A table that leaves R@1
    out is ranked by the first metric it keeps.
    """
    measured = measured_columns(frame)
    unknown = [name for name in names if name not in measured]
    if unknown:
        raise CvbenchError(f"--metrics: {', '.join(map(repr, unknown))} measured by none of the listed runs; "
                           f"they measured: {', '.join(measured) or 'nothing'}")
    dropped = [name for name in measured if name not in names]
    return frame.drop(columns=[*dropped, *(f"{name}{INTERVAL_SUFFIX}" for name in dropped)], errors="ignore")


def _rank_by(metrics: list[str]) -> list[str]:
    """The column a table is ranked by: :data:`RANK_BY`, else its first metric (none without metrics)."""
    return [RANK_BY if RANK_BY in metrics else metrics[0]] if metrics else []


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    ranked = table.sort_values(_rank_by(measured_columns(table)), ascending=False, na_position="last", kind="stable")
    return ranked.reset_index(drop=True)


def sections(finished: pd.DataFrame) -> list[Section]:
    """The finished runs split by :data:`SECTION_BY`, each section ranked on its own (sections by title).

    A frame with a ``group key`` column (``to_frame(group_by=...)``) becomes
    one row per key within each section: ``n`` runs, their ``seeds``, and
    each metric's mean with ``<metric> ci95``, the half-width of its 95%
    t-interval over the seeds (:mod:`cvbench.runs.seed_merge`).
    """
    if finished.empty:
        return []
    by = [column for column in SECTION_BY if column in finished]
    several_views = "view" in finished and finished["view"].nunique() > 1
    out = []
    for values, table in finished.groupby(by, sort=True):
        where = dict(zip(by, values))
        title = where["dataset"] + (f", query view {where['view']}" if several_views else "")
        if GROUP in table:
            table = merge_seeds(table.drop(columns=[GROUP]), table[GROUP].tolist(), measured_columns(table))
        out.append(Section(title, _ranked(table)))
    return out


K_RULES = {"floor+1": "floor(M/100) + 1", "floor": "max(1, floor(M/100))"}
ONE_PERCENT = "R@1%"


def drop_repeated_one_percent(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(the table without R@1% where it is an R@k column under another name, the line that says so).

    R@1%'s k follows from the gallery size M (``one_percent_k``): a gallery
    of 1,000 under ``floor`` makes R@1% = R@10, a column shown twice.
    """
    needed = (ONE_PERCENT, "gallery", "R@1% k")
    if table.empty or not all(column in table for column in needed) or table["gallery"].isna().any():
        return table, ""
    ks = {one_percent_k(int(size), rule) for size, rule in zip(table["gallery"], table["R@1% k"])}
    column = f"R@{min(ks)}"
    if len(ks) != 1 or column not in table or not np.allclose(
            table[column].astype(float), table[ONE_PERCENT].astype(float), equal_nan=True):
        return table, ""
    sizes = ", ".join(sorted({str(int(size)) for size in table["gallery"]}, key=int))
    rules = " or ".join(sorted({K_RULES.get(rule, rule) for rule in table["R@1% k"]}))
    dropped = [name for name in (ONE_PERCENT, ONE_PERCENT + INTERVAL_SUFFIX) if name in table]
    return table.drop(columns=dropped), (f"R@1% is {column} here (gallery of {sizes}: k = {rules} = {min(ks)}), "
                                         "so its column is left out.")


def _with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each metric's mean and ci95 columns as one text column ``mean ± half-width`` (the mean alone for n = 1)."""
    table = table.copy()
    for column in [name for name in table.columns if name + INTERVAL_SUFFIX in table]:
        half = table.pop(column + INTERVAL_SUFFIX)
        table[column] = [("" if pd.isna(mean) else f"{mean:.2f}" + ("" if pd.isna(h) else f" ± {h:.2f}"))
                         for mean, h in zip(table[column], half)]
    return table


def presentable(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A section as a reader's table shows it, and the lines under it.

    R@1% is left out where it repeats an R@k column, the conventions every
    run shares are stated once, and merged seeds read ``mean ± half-width``.
    """
    table, repeated = drop_repeated_one_percent(table)
    table, conventions = lift_protocol(table)
    notes = [repeated, conventions]
    if any(column.endswith(INTERVAL_SUFFIX) for column in table.columns):
        table = _with_intervals(table.drop(columns=[c for c in ("runs",) if c in table]))
        notes.append("Each metric: mean ± half-width of the 95% t-interval over the n seeds (docs/statistics.md).")
    return table, [note for note in notes if note]


SCHEMA_VERSION = 1
"""``--format json``'s layout (docs/runs.md); raised when a key changes meaning or goes away."""


def json_key(column: str) -> str:
    """A column as a JSON key without spaces: ``R@1%`` -> ``r_at_1_pct``, ``wall time (s)`` -> ``wall_time_s``."""
    text = column.replace("@", " at ").replace("%", " pct ")
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


def _json_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(table.rename(columns=json_key).to_json(orient="records"))


def _flat(parts: list[Section]) -> pd.DataFrame:
    """Every section's rows in one table, with its ``section`` and ``rank`` (1 = best) first."""
    tables = [section.table.assign(rank=range(1, len(section.table) + 1)).assign(section=section.title)
              for section in parts]
    if not tables:
        return pd.DataFrame()
    table = pd.concat(tables, ignore_index=True)
    return table[["section", "rank", *(c for c in table.columns if c not in ("section", "rank"))]]


def to_json(parts: list[Section], others: pd.DataFrame) -> dict[str, Any]:
    """The JSON export: ``schema_version``, ``sections`` (each a title and its ranked rows) and ``unfinished``."""
    return {"schema_version": SCHEMA_VERSION,
            "sections": [{"title": section.title,
                          "rows": [{"rank": rank, **row} for rank, row in enumerate(_json_rows(section.table), 1)]}
                         for section in parts],
            "unfinished": _json_rows(others) if not others.empty else []}


def markdown_table(table: pd.DataFrame) -> str:
    """A table as markdown: numbers to two decimals, text as written (``lr 0.0001`` is not a number to round)."""
    numbers = set(measured_columns(table))  # "12.00 ± 4.97" as well
    numeric = [column in numbers or table[column].dtype.kind in "fiu" for column in table.columns]
    cells = table.astype(object).apply(lambda column: [cell_text(value) for value in column])
    return cells.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if number else "left" for number in numeric])


def cell_text(value: Any) -> str:
    """A table cell: a float to two decimals, a missing value (None, NaN, NA) blank, the rest as written."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def render(frame: pd.DataFrame, fmt: str) -> str:
    """The finished runs as markdown, CSV or JSON text (unfinished ones follow in markdown).

    Each dataset, split and query view is its own section with its own
    ranking. CSV (one table, with ``section`` and ``rank`` columns) and JSON
    keep every column; markdown heads each section (where there are several)
    and states under each table what it leaves out.
    """
    finished, others = split_finished(frame)
    parts = sections(finished)
    if fmt == "markdown":
        blocks = []
        for section in parts:
            table, notes = presentable(section.table)
            heading = f"### {section.title}\n\n" if len(parts) > 1 else ""
            blocks.append(heading + "\n\n".join([markdown_table(table), *notes]))
        text = "\n\n".join(blocks) or "_no finished runs_"
        if not others.empty:
            text += "\n\nUnfinished or failed runs (not results):\n\n" + others.to_markdown(index=False)
        return text + "\n"
    if fmt == "csv":
        return _flat(parts).to_csv(index=False)
    if fmt == "json":
        return json.dumps(to_json(parts, others), indent=2, ensure_ascii=False) + "\n"
    raise CvbenchError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
