"""``cvbench leaderboard RUNS_DIR``: rank finished runs; export markdown, CSV, JSON or HTML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import atomic
from ..errors import CvbenchError

Format = Literal["table", "markdown", "csv", "json", "html"]
"""cvbench.runs.leaderboard.FORMATS and cvbench.html_report's "html" (tests/test_cli.py holds them equal), written out:
those modules import pandas and torch, and typer needs the choices for `cvbench --help`."""
HTML = "html"  # the sortable table alone, as a page that opens offline (cvbench.html_report)


def register(app: typer.Typer) -> None:
    @app.command("leaderboard")
    def leaderboard_command(
        runs_dir: Path = typer.Argument(Path("runs"), help="Folder of run folders."),
        fmt: Format = typer.Option("table", "--format", help="Output format."),
        out: Optional[Path] = typer.Option(None, help="Write to this file (atomically) instead of printing."),
        uniformity: bool = typer.Option(False, "--uniformity/--no-uniformity",
                                        help="Add the uniformity columns (after, and before fine-tuning)."),
        where: Optional[list[str]] = typer.Option(
            None, "--where", metavar="KEY=VALUE[,KEY=VALUE]",
            help="Only runs with these option values, all of them (e.g. dataset=vigor,split=cross_area); repeatable."),
        group_by: Optional[str] = typer.Option(
            None, "--group-by", metavar="all|OPTION[,OPTION]",
            help="Merge the seeds of runs alike in these options into mean ± 95% interval; all = every option but "
                 "the seed."),
        metrics: Optional[str] = typer.Option(
            None, "--metrics", metavar="NAME[,NAME]",
            help=f"Only these metric columns (e.g. R@1,R@5,AP); the terminal table shows the first {TERMINAL_METRICS} "
                 "by default, the exports all."),
    ) -> None:
        """One row per run with its settings and R@1, R@5, R@10, R@1%; best R@1 first, per dataset and split."""
        from ..runs.leaderboard import FORMATS, load_records, render, select_metrics, to_frame
        from ..runs.run_settings import matches, parse_group_by, parse_where

        if fmt not in (*FORMATS, HTML):
            raise CvbenchError(f"--format {fmt!r}: expected one of {', '.join((*FORMATS, HTML))}")
        wanted = parse_where(where or [])
        fields = parse_group_by(group_by) if group_by is not None else None
        records = [record for record in load_records(runs_dir) if matches(record, wanted)]
        frame = to_frame(records, uniformity=uniformity, group_by=fields)
        if metrics is not None:
            frame = select_metrics(frame, [name.strip() for name in metrics.split(",") if name.strip()])
        if fmt == "table" and out is None:
            _print_table(frame, chosen=metrics is not None,
                         empty=f"no finished runs in {runs_dir}" + (f" with --where {', '.join(where)}" if where else ""))
            return
        if fmt == HTML:
            from ..html_report.page import leaderboard_page

            text = leaderboard_page(frame, runs_dir.as_posix())
        else:
            text = render(frame, "markdown" if fmt == "table" else fmt)
        if out is None:
            typer.echo(text, nl=False)
        else:
            atomic.write_text(out, text)
            typer.echo(f"wrote {out}")


TERMINAL_METRICS = 6
"""Metric columns the terminal table shows unless ``--metrics`` names others (R@1, R@5, R@10, R@1%, AP, median
error in metres, as a run records them)."""

LIFTED = ("pretrainer", "pretraining", "ground init", "aerial init", "backbone", "head", "loss", "sampler", "labels",
          "seed", "n", "seeds", "queries", "gallery")
"""Settings a terminal table states once under itself where every row of a section shares them (narrower rows)."""


def _lift_shared(table, option_columns):
    """(the table without the settings every row shares, a line naming them): a terminal table stays narrow."""
    candidates = [*LIFTED, *(c for c in table.columns if c in option_columns)]
    same = [c for c in candidates if c in table and len(table) > 0 and table[c].nunique(dropna=False) == 1]
    line = ", ".join(f"{column} {_cell(table[column].iloc[0])}" for column in same)
    return table.drop(columns=same), (f"All runs: {line}." if line else "")


def _print_table(frame, chosen: bool = False, empty: str = "no finished runs") -> None:
    """The terminal table: per section, the settings that differ and (unless ``chosen``) the first metrics.

    With the metre protocol a run measures 13 numbers; beside the option
    columns that no screen holds, so the rest are named under the table.
    """
    from ..runs.leaderboard import measured_columns, presentable, sections, select_metrics, split_finished
    from ..runs.run_settings import OPTION_FIELDS, option_column

    console = Console() if sys.stdout.isatty() else Console(width=220)  # pipes and logs get full rows
    finished, others = split_finished(frame)
    hidden = [] if chosen else measured_columns(finished)[TERMINAL_METRICS:]
    if hidden:
        finished = select_metrics(finished, measured_columns(finished)[:TERMINAL_METRICS])
        hidden_line = (f"Also measured: {', '.join(hidden)} (show them with --metrics NAMES, or export all with "
                       "--format markdown, csv or json).")
    parts = sections(finished)
    if not parts:
        console.print(Text(empty))
    for section in parts:
        table, notes = presentable(section.table.drop(columns=["dataset", "runs"], errors="ignore"))
        table, shared = _lift_shared(table, {option_column(name) for name in OPTION_FIELDS})
        rich_table = Table(title=f"cvbench leaderboard: {section.title}",
                           caption="\n".join(filter(None, (shared, *notes, hidden and hidden_line))) or None)
        numbers = set(measured_columns(table))  # "12.00 ± 4.97" too
        for column in table.columns:
            whole = max(map(len, table[column].astype(str))) if column == "run" else None  # never cut a run's name
            right = column in numbers or table[column].dtype.kind in "fi"
            rich_table.add_column(str(column), justify="right" if right else "left", min_width=whole)
        for _, row in table.iterrows():
            rich_table.add_row(*(_cell(v) for v in row))
        console.print(rich_table)
    if not others.empty:
        rich_table = Table(title="unfinished or failed runs (not results)")
        for column in others.columns:
            rich_table.add_column(str(column))
        for _, row in others.iterrows():
            rich_table.add_row(*(_cell(v) for v in row))
        console.print(rich_table)


def _cell(value) -> str:
    from ..runs.leaderboard import cell_text

    return cell_text(value)
