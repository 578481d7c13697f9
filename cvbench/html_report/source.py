"""What ``cvbench report ARG`` reports on: a runs folder, or a benchmark grid and its results folder.

``ARG`` is a folder of runs, a grid file, or a shipped grid's name (as
``cvbench bench`` takes it, with its results in ``runs/bench/<name>`` unless
``--runs-dir`` says otherwise). A folder is a grid's results, and the page
adds its findings, where ``--grid`` names the grid or the folder bears a
shipped grid's name and holds its rows' folders (``runs/bench/<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bench.scheduler import default_runs_dir
from ..bench.schema import Bench, load_bench, shipped_grids
from ..errors import CvbenchError


@dataclass
class ReportSource:
    """The runs folder the page reads and, for a grid's results, the grid."""

    runs_dir: Path
    bench: Bench | None = None

    def row_of(self, run_dir: Path) -> str | None:
        """The grid row whose folder holds ``run_dir`` (a grid writes ``<results>/<row>/<run>``); None for a
        runs folder that is no grid's, or a run outside the grid's rows (a stage's)."""
        if self.bench is None:
            return None
        try:
            first = run_dir.resolve().relative_to(self.runs_dir.resolve()).parts[0]
        except (ValueError, IndexError):
            return None
        return first if first in {row.name for row in self.bench.rows} else None


def resolve(argument: Path, runs_dir: Path | None = None, grid: str | None = None) -> ReportSource:
    """The source ``argument`` names (see the module's docstring); a one-line error when it names nothing."""
    if argument.is_dir():
        if runs_dir is not None:
            raise CvbenchError(f"--runs-dir is for a grid argument; {argument} is already a runs folder")
        bench = load_bench(grid) if grid is not None else _grid_of(argument)
        return ReportSource(argument, bench)
    if argument.suffix == ".toml" or argument.is_file() or argument.name in shipped_grids():
        if grid is not None:
            raise CvbenchError(f"--grid is for a runs folder argument; {argument} is already a grid")
        bench = load_bench(argument)
        return ReportSource(runs_dir or default_runs_dir(bench), bench)
    raise CvbenchError(f"{argument}: no such runs folder, grid file or shipped grid (cvbench bench --list names "
                       "the shipped grids)")


def _grid_of(folder: Path) -> Bench | None:
    """The shipped grid whose results ``folder`` holds: its name is the grid's and a row's folder is in it."""
    path = shipped_grids().get(folder.resolve().name)
    if path is None:
        return None
    bench = load_bench(path)
    return bench if any((folder / row.name).is_dir() for row in bench.rows) else None
