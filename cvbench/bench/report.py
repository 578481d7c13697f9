"""What a benchmark grid found: per-row summaries, paired findings, pre-training evidence, the label curve.

Everything here reads the finished runs' ``result.json`` records (through
:func:`cvbench.bench.scheduler.plan`), never a number typed by hand. A finding is
judged on the per-seed paired differences of its two rows with a paired t
interval, Holm-corrected across the grid's findings (:mod:`cvbench.evaluation.statistics`,
``docs/statistics.md``). A row whose pre-training did not learn (its probe did
not improve, or its loss did not fall) is flagged wherever it is compared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation.statistics import holm, paired_difference, verdict
from ..runs.folder import RunFolder
from ..runs.leaderboard import conventions_line, metric_names, protocol_columns
from .scheduler import Job, describe, finished_runs, plan
from .schema import REPORTED, VERDICTS, Bench

SCORE = "R@1"


Records = tuple[dict[str, Job], list[Job], dict[str, dict[int, dict[str, Any]]]]


def records(bench: Bench, runs_dir: Path) -> Records:
    """The grid's stage and row jobs and, per row, the finished record of each seed.

    The functions below take them as ``loaded`` so a report plans the grid
    and reads its records once; without it each loads them itself.
    """
    stages, jobs = plan(bench, runs_dir)
    found: dict[str, dict[int, dict[str, Any]]] = {row.name: {} for row in bench.rows}
    for job in jobs:
        if job.done is not None:
            found[job.row][job.seed] = RunFolder(job.done).read_result()
    return stages, jobs, found


def summarise(bench: Bench, runs_dir: Path, loaded: Records | None = None) -> pd.DataFrame:
    """One row per grid row: settings, finished seeds, mean and standard deviation of each metric."""
    stages, jobs, found = loaded or records(bench, runs_dir)
    flags = not_learned(stages, jobs, found)
    rows = []
    for row in bench.rows:
        runs = list(found[row.name].values())
        job = next((j for j in jobs if j.row == row.name), None)
        settings = f"invalid: {job.error}" if job.error is not None else describe(job.spec, job.refs)
        entry: dict[str, Any] = {"row": row.name, "mirrors": row.mirrors, "settings": settings,
                                 "seeds": f"{len(runs)}/{len(row.seeds)}", "pre-training": flags.get(row.name, "")}
        for metric in report_metrics(bench, found):
            values = [r["metrics"][metric] for r in runs if metric in r.get("metrics", {})]
            entry[f"{metric} mean"] = _mean(values)
            entry[f"{metric} std"] = _std(values)
        entry["U all mean"] = _mean([r["uniformity"]["after"]["all"] for r in runs if r.get("uniformity")])
        for metric in REPORTED:
            entry[f"reported {metric}"] = row.reported.get(metric, math.nan)
        rows.append(entry)
    return pd.DataFrame(rows)


def report_metrics(bench: Bench, found: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """The report's metric columns: ``[report] metrics``, else every metric the grid's runs recorded, in order."""
    if bench.metrics is not None:
        return list(bench.metrics)
    return metric_names([record for by_seed in found.values() for record in by_seed.values()])


def assess(bench: Bench, runs_dir: Path, loaded: Records | None = None) -> pd.DataFrame:
    """Each finding on the seeds both rows finished: paired mean difference of R@1, its interval, p, Holm p, verdict."""
    stages, jobs, found = loaded or records(bench, runs_dir)
    flags = not_learned(stages, jobs, found)
    rows = []
    for finding in bench.findings:
        base, treat = found[finding.baseline], found[finding.treatment]
        seeds = sorted(set(base) & set(treat))
        difference = paired_difference([base[s]["metrics"][SCORE] for s in seeds],
                                       [treat[s]["metrics"][SCORE] for s in seeds])
        caution = "; ".join(f"{name}: {flags[name]}" for name in (finding.baseline, finding.treatment)
                            if name in flags)
        rows.append({"finding": finding, "difference": difference, "caution": caution})
    adjusted = holm([row["difference"].p for row in rows]) if rows else np.array([])
    for row, p in zip(rows, adjusted):
        row["holm p"] = float(p)
        row["verdict"] = verdict(row["difference"], VERDICTS[row["finding"].expected], float(p), margin=bench.margin)
    return pd.DataFrame(rows)


def evidence(stages: dict[str, Job], found: dict[str, dict[int, dict[str, Any]]]) -> pd.DataFrame:
    """Every pre-training stage of the grid (stages and rows), per branch: steps, loss and probe, averaged over seeds."""
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    for name, job in stages.items():
        if job.done is not None:
            runs.append((f"@{name}", [RunFolder(job.done).read_result()]))
    runs += [(row, list(by_seed.values())) for row, by_seed in found.items()]
    table = []
    for name, records_ in runs:
        branches = sorted({b for r in records_ for b in (r.get("pretraining") or {})})
        for branch in branches:
            stages_ = [r["pretraining"][branch] for r in records_ if branch in (r.get("pretraining") or {})]
            if not stages_ or "probe" not in stages_[0]:
                continue
            table.append({
                "row": name, "branch": branch, "seeds": len(stages_),
                "images": stages_[0]["images"], "steps": stages_[0]["steps"],
                "loss first epoch": _mean([s["losses"][0] for s in stages_]),
                "loss last epoch": _mean([s["losses"][-1] for s in stages_]),
                "probe before": _mean([s["probe"]["before"] for s in stages_]),
                "probe after": _mean([s["probe"]["after"] for s in stages_]),
                "probe chance": stages_[0]["probe"]["chance"],
                "learned": f"{sum(bool(s['learned']) for s in stages_)}/{len(stages_)}",
            })
    return pd.DataFrame(table)


def training(jobs: list[Job], found: dict[str, dict[int, dict[str, Any]]]) -> pd.DataFrame:
    """Every row that fine-tunes, averaged over its finished seeds: the epoch loss of its first and last
    fine-tuning epoch (``metrics.csv``), how many seeds' loss fell, and the share of fine-tuning time a mining
    sampler spent embedding (``timings.mining_s``)."""
    per_row: dict[str, list[tuple[float, float, float | None]]] = {}
    for job in jobs:
        if job.done is None or job.seed not in found.get(job.row, {}):
            continue
        folder = RunFolder(job.done)
        if not folder.metrics_file.is_file():
            continue
        losses = folder.read_metrics()
        if "loss" not in losses:
            continue
        losses = losses.loc[(losses["epoch"] >= 1) & losses["loss"].notna(), "loss"].tolist()
        if not losses:
            continue  # zero-shot: nothing trained
        timings = found[job.row][job.seed].get("timings") or {}
        share = timings["mining_s"] / timings["finetune_s"] if timings.get("mining_s") and \
            timings.get("finetune_s") else None
        per_row.setdefault(job.row, []).append((losses[0], losses[-1], share))
    table = []
    for row, seeds in per_row.items():
        shares = [share for *_, share in seeds if share is not None]
        table.append({"row": row, "seeds": len(seeds),
                      "loss first epoch": _mean([first for first, _, _ in seeds]),
                      "loss last epoch": _mean([last for _, last, _ in seeds]),
                      "loss fell": f"{sum(last < first for first, last, _ in seeds)}/{len(seeds)}",
                      "mining share": f"{100 * _mean(shares):.0f}%" if shares else ""})
    frame = pd.DataFrame(table)
    if len(frame) and not frame["mining share"].str.len().any():
        frame = frame.drop(columns="mining share")
    return frame


def not_learned(stages: dict[str, Job], jobs: list[Job], found: dict[str, dict[int, dict[str, Any]]]) -> dict[str, str]:
    """Row or ``@stage`` name -> a warning saying which evidence failed, for every pre-training (any seed) that did
    not learn, and for every row that starts from such a stage."""
    table = evidence(stages, found)
    flags = {}
    for _, entry in table.iterrows():
        done, total = map(int, entry["learned"].split("/"))
        if done < total:
            failed = []
            if not entry["probe after"] > entry["probe before"]:
                failed.append(f"probe {entry['probe before']:.1f} -> {entry['probe after']:.1f}")
            if not entry["loss last epoch"] < entry["loss first epoch"]:
                failed.append(f"loss {entry['loss first epoch']:.3f} -> {entry['loss last epoch']:.3f}")
            flags[entry["row"]] = (f"{entry['branch']} pre-training did not learn in {total - done} of {total} seeds"
                                   + (f" ({', '.join(failed)} on average)" if failed else ""))
    for job in jobs:
        for stage in sorted(set(job.refs.values()) & set(flags)):
            flags.setdefault(job.row, f"starts from {stage}, whose {flags[stage]}")
    return flags


def curve(bench: Bench, runs_dir: Path, loaded: Records | None = None) -> pd.DataFrame:
    """The label-efficiency points of ``[report] curve``: per series and row, the option's value and R@1 over seeds.

    With exactly two series, each point also carries the paired difference
    (second minus first) at that value, over the seeds both finished.
    """
    if bench.curve is None:
        return pd.DataFrame()
    _, jobs, found = loaded or records(bench, runs_dir)
    spec_of = {job.row: job.spec for job in jobs}
    points = []
    for series, rows in bench.curve["series"].items():
        for row in rows:
            values = [found[row][s]["metrics"][SCORE] for s in sorted(found[row])]
            interval = paired_difference([0.0] * len(values), values)  # a one-sample t interval of the mean
            points.append({"series": series, "row": row, "x": float(getattr(spec_of[row], bench.curve["option"])),
                           "seeds": len(values), "mean": interval.mean, "low": interval.low, "high": interval.high})
    table = pd.DataFrame(points)
    names = list(bench.curve["series"])
    if len(names) == 2 and len(table):
        first, second = (table[table.series == n].set_index("x") for n in names)
        for x in sorted(set(first.index) & set(second.index)):
            a, b = found[first.loc[x, "row"]], found[second.loc[x, "row"]]
            seeds = sorted(set(a) & set(b))
            d = paired_difference([a[s]["metrics"][SCORE] for s in seeds], [b[s]["metrics"][SCORE] for s in seeds])
            mask = (table.x == x) & (table.series == names[1])
            table.loc[mask, ["difference", "difference low", "difference high", "p"]] = [d.mean, d.low, d.high, d.p]
    return table


def plot_curve(table: pd.DataFrame, option: str, out: Path) -> Path:
    """R@1 against the option (log x), one line per series with its 95% interval as a band; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import write_png

    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    for series, points in table.groupby("series", sort=False):
        points = points.sort_values("x")
        axes.plot(points.x * 100, points["mean"], marker="o", label=series)
        axes.fill_between(points.x * 100, points["low"], points["high"], alpha=0.2)
    axes.set_xscale("log")
    ticks = sorted(table.x.unique() * 100)
    axes.set_xticks(ticks, [f"{t:g}%" for t in ticks])
    axes.set_xlabel(f"labelled training pairs ({option.replace('_', ' ')})")
    axes.set_ylabel("R@1 (%), mean and 95% interval over seeds")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return write_png(figure, out)


def write_report(bench: Bench, runs_dir: Path, out: Path, figure: Path | None = None,
                 images: Path | None = None) -> Path:
    """The grid's report as markdown: rows, findings with intervals, pre-training evidence, curve, notes.

    ``figure`` (relative to ``out``) is an embedding comparison to show;
    with ``images`` (a folder) the label-efficiency figure is drawn there.
    """
    from ..atomic import write_text

    loaded = records(bench, runs_dir)
    stages, _, found = loaded
    summary = summarise(bench, runs_dir, loaded)
    command = f"cvbench bench {bench.label}" + (f" --report {out.as_posix()}" if images is not None else "")
    seconds, devices = _totals(runs_dir)
    lines = [f"# {bench.title}", "", f"Grid `{bench.label}`, results in `{runs_dir.as_posix()}`; "
             f"generated by `{command}`. The {len(seconds)} runs took {sum(seconds) / 60:.1f} min in all on "
             f"{', '.join(sorted(devices)) or 'no device'}. Mean and sample standard deviation over the finished "
             "seeds; R@k in percent; `U all` is the uniformity of all validation embeddings after fine-tuning "
             "(lower is more uniform).", ""]
    table = pd.DataFrame({
        "row": summary["row"], "mirrors": summary["mirrors"], "settings": summary["settings"],
        "seeds": summary["seeds"],
    })
    for metric in report_metrics(bench, found):
        if f"{metric} mean" in summary and summary[f"{metric} mean"].notna().any():
            table[metric.replace("_", " ")] = [_pm(m, s) for m, s in zip(summary[f"{metric} mean"],
                                                                           summary[f"{metric} std"])]
    table["U all"] = [_number(v) for v in summary["U all mean"]]
    if summary[[f"reported {m}" for m in REPORTED]].notna().any().any():
        for metric in REPORTED:
            table[f"thesis {metric}"] = [_number(v) for v in summary[f"reported {metric}"]]
    if summary["pre-training"].str.len().any():
        table["warning"] = summary["pre-training"]
    lines += [*_with_conventions(table, summary["row"], found), ""]
    if bench.findings:
        lines += _findings_section(bench, runs_dir, loaded)
    trained = training(loaded[1], found)
    if len(trained):
        mining = (" `mining share` is the part of fine-tuning time a mining sampler spent embedding the training "
                  "pairs (`timings.mining_s` over `timings.finetune_s`).") if "mining share" in trained else ""
        lines += ["## Did fine-tuning train?", "",
                  "Every row that fine-tunes, averaged over its seeds: the mean training loss of its first and last "
                  "epoch (each run's `metrics.csv`). A row near chance whose loss fell fitted its training pairs "
                  f"without learning a match that carries to the evaluation queries.{mining}", "",
                  trained.round(3).to_markdown(index=False), ""]
    proof = evidence(stages, found)
    if len(proof):
        lines += ["## Did pre-training learn?", "",
                  "Every pre-training stage, per branch, averaged over its seeds: the mean loss of its first and last "
                  "epoch, and the label-free probe before and after it (top-1 retrieval, in percent, of an image "
                  "among augmented views of the evaluation subset's images, `cvbench/evaluation/probe.py`). `learned` counts "
                  "the seeds whose probe improved and (over two or more epochs) whose loss fell; a row with a seed "
                  "that did not learn carries a warning in the tables above.", "",
                  proof.round(2).to_markdown(index=False), ""]
    if bench.curve is not None:
        lines += _curve_section(bench, runs_dir, loaded, out, images)
    if figure is not None:
        lines += ["## Embeddings before fine-tuning", "", f"![compare]({figure.as_posix()})", ""]
    if bench.notes:
        lines += [bench.notes.strip(), ""]
    write_text(out, "\n".join(lines))
    return out


def _with_conventions(table: pd.DataFrame, rows: pd.Series, found: dict[str, dict[int, dict[str, Any]]]
                      ) -> list[str]:
    """The rows table, then the conventions its numbers follow: one line when every run shares them, else a
    column saying each row's."""
    lines = {row: list(dict.fromkeys(conventions_line(protocol_columns(record)) for record in found[row].values()))
             for row in rows}
    distinct = {line for row_lines in lines.values() for line in row_lines}
    if len(distinct) > 1:
        bare = (lambda line: line.removeprefix("Conventions: ").removesuffix(" (docs/metrics.md)."))
        table = table.assign(conventions=["; ".join(bare(line) for line in lines[row]) for row in rows])
    return [table.to_markdown(index=False)] + (["", distinct.pop()] if len(distinct) == 1 else [])


def _findings_section(bench: Bench, runs_dir: Path, loaded: Records) -> list[str]:
    assessed = assess(bench, runs_dir, loaded)
    margin = f' Where the interval lies inside ±{bench.margin:g} points, the verdict is "no effect larger than ' \
             f'{bench.margin:g}".' if bench.margin is not None else ""
    lines = ["## Findings", "",
             f"Each finding compares two rows on the seeds both finished, seed by seed (the rows of one seed share "
             f"their training pairs and validation queries): the mean paired difference of {SCORE} (treatment minus "
             "baseline), its 95% paired t interval, the two-sided p, and p after Holm's correction across the "
             f"{len(bench.findings)} findings. A finding is \"reproduced\" when the Holm-corrected p is below 0.05 "
             "and the difference has the expected sign (the thesis' or the cited paper's), \"opposite\" when it is "
             "below 0.05 with the other sign, and "
             f"\"inconclusive\" otherwise.{margin} Inconclusive is not \"no effect\": the interval shows what the "
             "data allow ([statistics](statistics.md)).", ""]
    rows = []
    for _, entry in assessed.iterrows():
        finding, d = entry["finding"], entry["difference"]
        rows.append({"question": finding.question, "rows": f"{finding.baseline} -> {finding.treatment}",
                     "expected": finding.note or f"{SCORE} {finding.expected}", "seeds": d.n,
                     f"measured {SCORE} change": _number(d.mean, signed=True),
                     "95% interval": f"[{_number(d.low, signed=True)}, {_number(d.high, signed=True)}]",
                     "p": _p(d.p), "Holm p": _p(entry["holm p"]),
                     "verdict": entry["verdict"] + (" (see warning)" if entry["caution"] else "")})
    lines += [pd.DataFrame(rows).to_markdown(index=False), ""]
    cautions = [f"- {entry['finding'].question}: {entry['caution']}" for _, entry in assessed.iterrows()
                if entry["caution"]]
    if cautions:
        lines += ["Findings whose rows' pre-training did not learn compare a method that did not train:", "",
                  *cautions, ""]
    return lines


def _curve_section(bench: Bench, runs_dir: Path, loaded: Records, out: Path, images: Path | None) -> list[str]:
    table = curve(bench, runs_dir, loaded)
    option = bench.curve["option"]
    lines = ["## Label efficiency", "",
             f"{SCORE} against the share of labelled training pairs fine-tuning sees (`{option}`; the shares of one "
             "seed are nested), mean and 95% t interval over seeds per point; with two series, the paired "
             "difference at each share (second minus first).", ""]
    if not len(table):
        return lines + ["No finished runs yet.", ""]
    shown = table.assign(share=[f"{x * 100:g}%" for x in table.x],
                         **{SCORE: [f"{m:.2f} [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) else _number(m)
                                    for m, lo, hi in zip(table["mean"], table["low"], table["high"])]})
    columns = ["series", "share", "row", "seeds", SCORE]
    if "difference" in shown:
        shown["paired difference"] = [
            "" if not math.isfinite(d) else f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}], p {_p(p)}"
            for d, lo, hi, p in zip(shown["difference"].fillna(math.nan), shown["difference low"].fillna(math.nan),
                                    shown["difference high"].fillna(math.nan), shown["p"].fillna(math.nan))]
        columns.append("paired difference")
    lines += [shown[columns].to_markdown(index=False), ""]
    if images is not None and table["seeds"].min() > 0:
        path = plot_curve(table, option, images / "label_efficiency.png")
        lines += [f"![label efficiency]({path.relative_to(out.parent).as_posix()})", ""]
    return lines


def _totals(runs_dir: Path) -> tuple[list[float], set[str]]:
    """Wall time of every finished run below ``runs_dir`` (stages included) and the devices they ran on."""
    seconds, devices = [], set()
    for _, folder in finished_runs(runs_dir):
        record = RunFolder(folder).read_result()
        seconds.append(float((record.get("timings") or {}).get("total_s", 0.0)))
        devices.add(str(record.get("device", "")))
    return seconds, devices


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _std(values: list[float]) -> float:
    """Sample standard deviation (ddof 1); NaN with fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _pm(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.2f} ± {std:.2f}" if math.isfinite(std) else f"{mean:.2f}"


def _number(value: float, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else "<0.001"
