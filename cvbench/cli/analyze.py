"""``cvbench analyze``: the thesis' figures for a run, or several runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import CvbenchError


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_command(
        runs: list[Path] = typer.Argument(..., help="Run folder(s)."),
        compare: bool = typer.Option(False, "--compare", help="Put the runs side by side (the thesis' a/b/c panels)."),
        out: Optional[Path] = typer.Option(None, help="Folder for the figures (default RUN/analysis; with --compare, ./compare)."),
        state: str = typer.Option("before", help="With --compare: the model before or after fine-tuning (figures 4.3, 4.4 show before)."),
        sample: int = typer.Option(1000, help="Validation queries (with their tiles) in the embedding figure; t-SNE cost grows with it."),
        queries: int = typer.Option(4, help="Queries with a localization heatmap."),
        images: int = typer.Option(4, help="Images per view in the feature-map figure."),
        neighbourhood: int = typer.Option(400, help="Tiles nearest each heatmap query that are drawn."),
        kappa: float = typer.Option(10.0, help="Concentration of the von Mises-Fisher density kernel."),
        seed: int = typer.Option(0, help="Which queries are sampled; the t-SNE seed."),
        device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Embedding figures (t-SNE, S^1, vMF density), localization heatmaps, feature maps, training curves."""
        from ..analysis.run_analysis import AnalysisOptions, analyze_run, compare_runs

        for name, value in (("sample", sample), ("queries", queries), ("images", images), ("neighbourhood", neighbourhood)):
            if value < 1:
                raise CvbenchError(f"--{name} must be at least 1, got {value}")
        if sample < 2:
            raise CvbenchError(f"--sample must be at least 2 (t-SNE needs two points), got {sample}")
        options = AnalysisOptions(sample=sample, queries=queries, images=images, neighbourhood=neighbourhood,
                                  kappa=kappa, seed=seed, device=device)
        if compare:
            written = compare_runs(runs, out or Path("compare"), state, options, quiet)
        else:
            if len(runs) != 1:
                raise CvbenchError(f"analyze takes one run folder, got {len(runs)}; add --compare to put several side by side")
            written = analyze_run(runs[0], out, options, quiet)
        for path in written:
            typer.echo(f"wrote {path}")
