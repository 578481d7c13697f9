"""``cvbench analyze``: the thesis' figures for a run, or several runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from enum import Enum

import typer

from ..analysis.figure_files import DEFAULT_DPI, DPI_RANGE, FIGURE_FORMATS
from ..errors import CvbenchError

# typer lists an Enum's values in --help and refuses any other with the list.
FigureFormat = Enum("FigureFormat", {name: name for name in FIGURE_FORMATS}, type=str)
State = Enum("State", {name: name for name in ("before", "after")}, type=str)


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_command(
        runs: list[Path] = typer.Argument(..., help="Run folder(s)."),
        compare: bool = typer.Option(False, "--compare/--no-compare",
                                     help="Put the runs side by side (the thesis' a/b/c panels)."),
        out: Optional[Path] = typer.Option(None, help="Folder for the figures (default RUN/analysis; with --compare, ./compare)."),
        state: State = typer.Option(
            "before", help="With --compare: the model before or after fine-tuning (figures 4.3, 4.4 show before)."),
        label: Optional[list[str]] = typer.Option(
            None, "--label",
            help="Name of a run in titles and legends instead of its folder; once per run, in the order of the runs."),
        fig_format: FigureFormat = typer.Option("png", "--fig-format", help="File format of the figures."),
        dpi: int = typer.Option(DEFAULT_DPI, help=f"Resolution in dots per inch ({DPI_RANGE[0]} to {DPI_RANGE[1]}); "
                                                  "for PDF and SVG, of the images inside."),
        sample: int = typer.Option(1000, help="Validation queries (with their tiles) in the embedding figure; t-SNE cost grows with it."),
        queries: int = typer.Option(4, help="Queries with a localization heatmap."),
        images: int = typer.Option(4, help="Images per view in the feature-map figure."),
        neighbourhood: int = typer.Option(400, help="Tiles nearest each heatmap query that are drawn."),
        kappa: float = typer.Option(10.0, help="Concentration of the von Mises-Fisher density kernel."),
        seed: int = typer.Option(0, help="Which queries are sampled; the t-SNE seed."),
        device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
        quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bars."),
    ) -> None:
        """Embedding figures (t-SNE, S^1, vMF density), localization heatmaps, feature maps, training curves."""
        from ..analysis.run_analysis import AnalysisOptions, analyze_run, compare_runs, run_labels

        for name, value in (("sample", sample), ("queries", queries), ("images", images), ("neighbourhood", neighbourhood)):
            if value < 1:
                raise CvbenchError(f"--{name} must be at least 1, got {value}")
        if sample < 2:
            raise CvbenchError(f"--sample must be at least 2 (t-SNE needs two points), got {sample}")
        options = AnalysisOptions(sample=sample, queries=queries, images=images, neighbourhood=neighbourhood,
                                  kappa=kappa, seed=seed, device=device, fig_format=fig_format.value, dpi=dpi)
        if compare:
            written = compare_runs(runs, out or Path("compare"), state.value, options, quiet, labels=label)
        else:
            if len(runs) != 1:
                raise CvbenchError(f"analyze takes one run folder, got {len(runs)}; add --compare to put several side by side")
            (name,) = run_labels(runs, label)
            written = analyze_run(runs[0], out, options, quiet, label=name)
        for path in written:
            typer.echo(f"wrote {path}")
