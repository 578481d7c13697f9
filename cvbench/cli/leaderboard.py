"""``cvbench leaderboard RUNS_DIR``: rank finished runs; export markdown, CSV or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import atomic
from ..errors import CvbenchError
from ..runs.leaderboard import FORMATS, lift_protocol, load_records, render, split_finished, to_frame


def register(app: typer.Typer) -> None:
    @app.command("leaderboard")
    def leaderboard_command(
        runs_dir: Path = typer.Argument(Path("runs"), help="Folder of run folders."),
        fmt: str = typer.Option("table", "--format", help=f"One of: {', '.join(FORMATS)}."),
        out: Optional[Path] = typer.Option(None, help="Write to this file (atomically) instead of printing."),
        uniformity: bool = typer.Option(False, "--uniformity", help="Add the uniformity columns (after, and before fine-tuning)."),
    ) -> None:
        """One row per run with its settings and R@1, R@5, R@10, R@1%; best R@1 first."""
        if fmt not in FORMATS:
            raise CvbenchError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
        frame = to_frame(load_records(runs_dir), uniformity=uniformity)
        if fmt == "table" and out is None:
            _print_table(frame)
            return
        text = render(frame, "markdown" if fmt == "table" else fmt)
        if out is None:
            typer.echo(text, nl=False)
        else:
            atomic.write_text(out, text)
            typer.echo(f"wrote {out}")


TERMINAL_HIDDEN = ("run", "queries")  # in the exports; too wide for a terminal table
SHARED = ("pretrainer", "pretraining", "ground init", "aerial init", "backbone", "head", "loss", "sampler", "dataset",
          "seed")


def _lift_shared(finished):
    """(the table without the settings every run shares, a line naming them): a terminal table stays narrow."""
    same = [c for c in SHARED if c in finished and len(finished) > 0 and finished[c].nunique(dropna=False) == 1]
    line = ", ".join(f"{column} {finished[column].iloc[0]}" for column in same)
    return finished.drop(columns=same), (f"All runs: {line}." if line else "")


def _print_table(frame) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=220)  # pipes and logs get full rows
    finished, others = split_finished(frame)
    finished, conventions = lift_protocol(finished.drop(columns=[c for c in TERMINAL_HIDDEN if c in finished.columns]))
    finished, shared = _lift_shared(finished)
    if finished.empty:
        console.print("no finished runs")
    else:
        table = Table(title="cvbench leaderboard", caption="\n".join(filter(None, (shared, conventions))) or None)
        for column in finished.columns:
            table.add_column(str(column), justify="right" if finished[column].dtype.kind in "fi" else "left")
        for _, row in finished.iterrows():
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
    if not others.empty:
        table = Table(title="unfinished or failed runs (not results)")
        for column in others.columns:
            table.add_column(str(column))
        for _, row in others.iterrows():
            table.add_row(*(_cell(v) for v in row))
        console.print(table)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
