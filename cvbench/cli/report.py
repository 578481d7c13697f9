"""``cvbench report RUNS_DIR|GRID --out report.html``: one self-contained HTML page of the results."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        source: Path = typer.Argument(..., metavar="RUNS_DIR|GRID",
                                      help="A folder of runs, or a benchmark grid (a TOML file or a shipped grid's "
                                           "name) whose results folder to report."),
        out: Path = typer.Option(Path("report.html"), "--out", help="The HTML file to write (atomically)."),
        runs_dir: Optional[Path] = typer.Option(None, "--runs-dir",
                                                help="For a grid: its results folder (default runs/bench/<name>)."),
        grid: Optional[str] = typer.Option(None, "--grid", metavar="FILE|NAME",
                                           help="For a runs folder: the grid whose results it holds (adds the "
                                                "findings; a shipped grid's folder is recognised by its name)."),
    ) -> None:
        """The leaderboard (sortable, mean ± 95% interval over seeds), a grid's findings, each run's figures and
        error map, in one HTML file that opens offline."""
        from ..html_report.page import check_out, write_report  # pandas, matplotlib: not for --help
        from ..html_report.source import resolve

        check_out(out)
        written = write_report(resolve(source, runs_dir, grid), out, source.as_posix())
        typer.echo(f"wrote {written}")
