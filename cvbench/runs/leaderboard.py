"""The leaderboard: every ``result.json`` under a runs folder, one row per run, ranked by R@1.

Result records are the only source of truth. The metric columns are the
metrics the runs recorded (``--metric``), built-in or from a plugin, in the
order they first appear. Finished runs are ranked; running, failed and
interrupted runs are listed apart and never as results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import CvbenchError
from .folder import RunFolder

RANK_BY = "R@1"  # the thesis' headline number; a board without it ranks by its first metric
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
    """A checkpoint start (file, run folder or its checkpoints/) as the file or run folder name."""
    path = Path(start)
    return path.name if path.suffix == ".safetensors" else (path.parent.name if path.name == "checkpoints" else path.name)


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
    k_rules = {"floor+1": "floor(M/100) + 1", "floor": "max(1, floor(M/100))"}
    parts = [words[column].format(k_rules.get(value, value) if column == "R@1% k" else value)
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
SETTINGS = ("run", "status", "pretrainer", "pretraining", "ground init", "aerial init", "backbone", "head", "loss",
            "sampler", "labels", "dataset", "seed", *PROTOCOL, "queries", "wall time (s)", "warnings",
            "error")  # every column that is not a metric


def _uniformity(record: dict[str, Any]) -> dict[str, float | None]:
    """Columns ``U ground``... (after fine-tuning) and ``U ground before``... (eq 3.6-3.8)."""
    values = record.get("uniformity") or {}
    columns = {}
    for state, suffix in (("after", ""), ("before", " before")):
        for kind in UNIFORMITY_KINDS:
            columns[f"U {kind}{suffix}"] = (values.get(state) or {}).get(kind)
    return columns


def to_frame(records: list[dict[str, Any]], uniformity: bool = False) -> pd.DataFrame:
    """One row per record with the columns a reader compares; sorted by R@1 (best first).

    With ``uniformity``, also the uniformity of the validation embeddings
    after and before fine-tuning (lower is more uniform). Finished
    ``cvbench pretrain`` runs are left out: they have checkpoints, not results.
    """
    rows = []
    names = metric_names(records)
    for record in records:
        if record.get("stage") == "pretrain" and record.get("status") == "finished":
            continue  # a finished `cvbench pretrain` made checkpoints, not retrieval results
        spec = record.get("spec", {})
        metrics = record.get("metrics", {}) or {}
        row = {
            "run": record.get("run"),
            "status": record.get("status", "unknown"),
            "pretrainer": spec.get("pretrainer", "none") if spec else "",
            "pretraining": _pretraining(spec),
            "ground init": _init(spec, "ground") if spec else "",
            "aerial init": _init(spec, "aerial") if spec else "",
            "backbone": _backbone(spec),
            "head": spec.get("head"),
            "loss": _loss(spec),
            "sampler": _sampler(spec),
            "labels": _labels(spec),
            "dataset": _datasets(record, spec),
            "seed": spec.get("seed"),
            **protocol_columns(record),
            **{name: metrics.get(name) for name in names},
            **(_uniformity(record) if uniformity else {}),
            "queries": record.get("num_queries"),
            "wall time (s)": (record.get("timings") or {}).get("total_s"),
            "warnings": "; ".join(record.get("warnings") or []) or None,
            "error": record.get("error"),
        }
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    rank_by = [RANK_BY if RANK_BY in names else names[0]] if names else []
    frame = frame.sort_values([*rank_by, "run"], ascending=[False] * len(rank_by) + [True], na_position="last",
                              kind="stable")
    if (frame["labels"] == "100%").all():  # no run fine-tuned on a share of its pairs (--train-fraction)
        frame = frame.drop(columns=["labels"])
    if (frame["sampler"] == "conflict_free").all():  # every run batched as the thesis did
        frame = frame.drop(columns=["sampler"])
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
    measured = [column for column in frame.columns if column not in SETTINGS and not column.startswith("U ")]
    done = (frame["status"] == "finished") & frame[measured].notna().any(axis=1)
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


def render(frame: pd.DataFrame, fmt: str) -> str:
    """The finished runs as markdown, CSV or JSON text (unfinished ones follow in markdown).

    CSV and JSON keep every column; markdown states the conventions the runs
    share in one line under the table.
    """
    finished, others = split_finished(frame)
    if fmt == "markdown":
        table, conventions = lift_protocol(finished)
        text = table.to_markdown(index=False, floatfmt=".2f") if not table.empty else "_no finished runs_"
        if conventions:
            text += "\n\n" + conventions
        if not others.empty:
            text += "\n\nUnfinished or failed runs (not results):\n\n" + others.to_markdown(index=False)
        return text + "\n"
    if fmt == "csv":
        return finished.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"finished": json.loads(finished.to_json(orient="records")),
                           "unfinished": json.loads(others.to_json(orient="records"))}, indent=2) + "\n"
    raise CvbenchError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
