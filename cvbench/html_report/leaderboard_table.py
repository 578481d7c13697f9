"""The leaderboard as sortable HTML tables, from :mod:`cvbench.runs.leaderboard`'s own frame and sections.

Nothing is recomputed here: the frame, its sections, the columns a reader's
table leaves out and the lines under it (the conventions, exactly as the
markdown export states them) are the leaderboard's. Each numeric cell carries
its value in ``data-value`` so the page's script sorts numbers as numbers
(``12.00 ± 4.97`` by its mean).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ..runs.leaderboard import (GROUP, RANK_BY, cell_text, measured_columns, presentable, sections,
                                split_finished, to_frame)
from ..runs.run_settings import GROUP_ALL_FIELDS
from .elements import paragraph, plain_table, text

_LEADING_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def report_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The leaderboard frame the report shows: seeds merged into mean ± 95% interval wherever a setting has
    several seeds (``cvbench leaderboard --group-by all``), else one row per run."""
    merged = to_frame(records, group_by=GROUP_ALL_FIELDS)
    finished, _ = split_finished(merged)
    keys = [column for column in ("dataset", "view", GROUP) if column in finished]
    if GROUP in finished and finished.duplicated(subset=keys).any():
        return merged
    return to_frame(records)


def _text_cell(shown: str) -> str:
    """A settings cell kept to one line: the style sheet clips a long value with an ellipsis, the title holds it
    whole (a long option value wrapped in a narrow column made its row many lines high)."""
    return f'<td title="{text(shown)}"><span class="clip">{text(shown)}</span></td>' if shown else "<td></td>"


def sortable_table(table: pd.DataFrame, sort_by: str | None) -> str:
    """One section as a ``<table class="sortable">``: a row per run or merged setting, named in ``data-run``."""
    numbers = set(measured_columns(table))
    numeric = [column in numbers or table[column].dtype.kind in "fiu" for column in table.columns]
    head = "".join(f'<th{" class=number" if flag else ""}>{text(column)}</th>'
                   for column, flag in zip(table.columns, numeric))
    rows = []
    for _, row in table.iterrows():
        cells = []
        for value, flag in zip(row, numeric):
            shown = cell_text(value)
            if flag:
                number = _LEADING_NUMBER.match(shown)
                value_attr = f' data-value="{number.group(1)}"' if number else ' data-value=""'
                cells.append(f'<td class="number"{value_attr}>{text(shown)}</td>')
            else:
                cells.append(_text_cell(shown))
        label = next((row[column] for column in ("run", "name", "runs") if column in row), "")
        rows.append(f'<tr data-run="{text(cell_text(label))}">{"".join(cells)}</tr>')
    sort_attr = f' data-sort-by="{text(sort_by)}"' if sort_by else ""
    return (f'<div class="table-wrap"><table class="sortable leaderboard"{sort_attr}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def lift_shared(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(the table without the settings every one of its rows shares, the line that states them once).

    A page is narrower than the options a grid holds fixed: the metrics
    should not sit off screen behind six columns saying ``none``.
    """
    if len(table) < 2:
        return table, ""
    metrics = set(measured_columns(table))
    same = [column for column in table.columns if column not in metrics and column not in ("run", "runs")
            and table[column].nunique(dropna=False) == 1]
    line = ", ".join(f"{column} {cell_text(table[column].iloc[0]) or '-'}" for column in same)
    return table.drop(columns=same), (f"Every row: {line}." if line else "")


IDENTITY = ("name", "run", "runs", "tags")
"""Columns that name a row: the grid row or ``--name`` of its runs, the run itself, its tags."""
DISTINGUISHING = ("head", "backbone", "loss", "sampler", "labels", "pretrainer", "pretraining", "ground init",
                  "aerial init")
"""The leaderboard's summary settings (the backbone column says frozen or shared too); those left after
:func:`lift_shared` are what tells the rows apart, so they sit beside the name."""
HEADLINE = ("R@1", "R@5", "R@10", "R@1%", "AP", "error_median_m")
"""The metrics a reader compares first, in this order; any others follow in the records' order."""


def reader_order(table: pd.DataFrame) -> pd.DataFrame:
    """The columns as a reader scans them on a page narrower than the table: the row's name, the settings the
    rows differ in, the headline metrics, the other metrics, then every other column (more options, seeds, time).
    """
    metrics = measured_columns(table)
    leading = [column for column in (*IDENTITY, *DISTINGUISHING) if column in table and column not in metrics]
    ranked = [*(name for name in HEADLINE if name in metrics), *(name for name in metrics if name not in HEADLINE)]
    return table[[*leading, *ranked, *(c for c in table.columns if c not in leading and c not in metrics)]]


def leaderboard_html(frame: pd.DataFrame) -> str:
    """Every section of the leaderboard (a heading each where there are several), its notes under it, then the
    unfinished or failed runs, apart and never ranked."""
    finished, others = split_finished(frame)
    parts = sections(finished)
    blocks = []
    for section in parts:
        table, notes = presentable(section.table)
        table, shared = lift_shared(table)
        table = reader_order(table)
        notes = [shared, *notes] if shared else notes
        metrics = measured_columns(table)
        sort_by = RANK_BY if RANK_BY in table else (metrics[0] if metrics else None)
        heading = f"<h3>{text(section.title)}</h3>" if len(parts) > 1 else ""
        blocks.append(heading + sortable_table(table, sort_by) + "".join(paragraph(note) for note in notes))
    if not parts:
        blocks.append(paragraph("No finished runs."))
    if not others.empty:
        blocks.append("<h3>Unfinished or failed runs (not results)</h3>"
                      + plain_table(others.columns, ([cell_text(v) for v in row] for _, row in others.iterrows())))
    return "\n".join(blocks)
