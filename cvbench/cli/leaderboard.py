"""``cvbench leaderboard RUNS_DIR``: rank finished runs; export markdown, CSV or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import atomic
from ..errors import CvbenchError

Format = Literal["table", "markdown", "csv", "json"]
"""cvbench.runs.leaderboard.FORMATS (tests/test_cli.py holds them equal), written out: that module imports pandas and
torch, and typer needs the choices for `cvbench --help`."""


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
    ) -> None:
        """One row per run with its settings and R@1, R@5, R@10, R@1%; best R@1 first, per dataset and split."""
        from ..runs.leaderboard import FORMATS, load_records, render, to_frame
        from ..runs.run_settings import matches, parse_group_by, parse_where

        if fmt not in FORMATS:
            raise CvbenchError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
        wanted = parse_where(where or [])
        fields = parse_group_by(group_by) if group_by is not None else None
        records = [record for record in load_records(runs_dir) if matches(record, wanted)]
        frame = to_frame(records, uniformity=uniformity, group_by=fields)
        if fmt == "table" and out is None:
            _print_table(frame)
            return
        text = render(frame, "markdown" if fmt == "table" else fmt)
        if out is None:
            typer.echo(text, nl=False)
        else:
            atomic.write_text(out, text)
            typer.echo(f"wrote {out}")


LIFTED = ("pretrainer", "pretraining", "ground init", "aerial init", "backbone", "head", "loss", "sampler", "labels",
          "seed", "n", "seeds", "queries", "gallery")
"""Settings a terminal table states once under itself where every row of a section shares them (narrower rows)."""


def _lift_shared(table, option_columns):
    """(the table without the settings every row shares, a line naming them): a terminal table stays narrow."""
    candidates = [*LIFTED, *(c for c in table.columns if c in option_columns)]
    same = [c for c in candidates if c in table and len(table) > 0 and table[c].nunique(dropna=False) == 1]
    line = ", ".join(f"{column} {_cell(table[column].iloc[0])}" for column in same)
    return table.drop(columns=same), (f"All runs: {line}." if line else "")


def _print_table(frame) -> None:
    from ..runs.leaderboard import measured_columns, presentable, sections, split_finished
    from ..runs.run_settings import OPTION_FIELDS, option_column

    console = Console() if sys.stdout.isatty() else Console(width=220)  # pipes and logs get full rows
    finished, others = split_finished(frame)
    parts = sections(finished)
    if not parts:
        console.print("no finished runs")
    for section in parts:
        table, notes = presentable(section.table.drop(columns=["dataset", "runs"], errors="ignore"))
        table, shared = _lift_shared(table, {option_column(name) for name in OPTION_FIELDS})
        rich_table = Table(title=f"cvbench leaderboard: {section.title}",
                           caption="\n".join(filter(None, (shared, *notes))) or None)
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
