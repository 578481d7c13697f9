"""A benchmark grid's findings with their intervals, as :mod:`cvbench.bench.report` judges them.

The paired differences, their 95% t intervals, p, Holm's correction and the
verdicts are :func:`cvbench.bench.report.assess`'s; this module only lays
them out as an HTML table, with the caution for a row whose pre-training
did not learn, as the markdown report does.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..bench.report import SCORE, assess, records
from ..bench.schema import Bench
from .elements import paragraph, text


def _signed(value: float) -> str:
    return f"{value:+.2f}" if math.isfinite(value) else "-"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else "<0.001"


def findings_html(bench: Bench, runs_dir: Path) -> str:
    """The findings section: what a verdict means, then one row per finding (paired over the seeds both rows
    finished), then the cautions."""
    if not bench.findings:
        return paragraph(f"The grid {bench.label} states no findings.")
    assessed = assess(bench, runs_dir, records(bench, runs_dir))
    intro = paragraph(
        f"Each finding compares two rows seed by seed: the mean paired difference of {SCORE} (treatment minus "
        "baseline) with its 95% paired t interval, the two-sided p, and p after Holm's correction across the "
        f"{len(bench.findings)} findings (docs/statistics.md). \"reproduced\": Holm p below 0.05 with the expected "
        "sign; \"opposite\": below 0.05 with the other; \"inconclusive\" is not \"no effect\"."
        + (f" Inside ±{bench.margin:g} points: \"no effect larger than {bench.margin:g}\"."
           if bench.margin is not None else ""))
    headers = ["question", "rows", "expected", "seeds", f"{SCORE} change", "95% interval", "p", "Holm p", "verdict"]
    numeric = {"seeds", f"{SCORE} change", "p", "Holm p"}
    head = "".join(f'<th{" class=number" if h in numeric else ""}>{text(h)}</th>' for h in headers)
    rows = []
    for _, entry in assessed.iterrows():
        finding, d = entry["finding"], entry["difference"]
        verdict = entry["verdict"] + (" (see caution)" if entry["caution"] else "")
        cells = [finding.question, f"{finding.baseline} -> {finding.treatment}",
                 finding.note or f"{SCORE} {finding.expected}", d.n, _signed(d.mean),
                 f"[{_signed(d.low)}, {_signed(d.high)}]", _p(d.p), _p(entry["holm p"])]
        tds = "".join(f'<td{" class=number" if h in numeric else ""}>{text(c)}</td>' for h, c in zip(headers, cells))
        css = text(entry["verdict"].split()[0])
        rows.append(f'<tr>{tds}<td class="verdict-{css}">{text(verdict)}</td></tr>')
    table = (f'<div class="table-wrap"><table class="findings"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table></div>')
    cautions = [f"{entry['finding'].question}: {entry['caution']}" for _, entry in assessed.iterrows()
                if entry["caution"]]
    caution = ("<p class=\"note\">Findings whose rows' pre-training did not learn:</p><ul>"
               + "".join(f"<li>{text(line)}</li>" for line in cautions) + "</ul>") if cautions else ""
    return intro + table + caution
