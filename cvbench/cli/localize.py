"""``cvbench index`` and ``cvbench localize``: a trained run embeds geo-tagged tiles, then places query images."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..progress import STDERR, counted, make_progress

# typer lists an Enum's values in --help and refuses any other with the list (cvbench.inference.outputs.FORMATS).
OutputFormat = Enum("OutputFormat", {name: name for name in ("csv", "geojson", "json")}, type=str)

RUN = typer.Argument(..., help="A finished run's folder (its spec.json and checkpoints/model.safetensors).")
DEVICE = typer.Option(None, help="auto, cpu, cuda, cuda:N or mps (default: the run's).")
BATCH = typer.Option(None, "--batch-size", min=1,
                     help="Images per embedding batch (default: the run's --eval-batch-size).")
QUIET = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bar.")


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index_command(
        run: Path = RUN,
        tiles: Path = typer.Option(..., help="Tiles: a CSV path,lat,lon (or path,x,y metres), a folder holding "
                                             "tiles.csv, or a folder of VIGOR-named tiles satellite_<lat>_<lon>.png."),
        out: Path = typer.Option(..., help="Folder to write the index into (an earlier index there is replaced)."),
        device: Optional[str] = DEVICE,
        batch_size: Optional[int] = BATCH,
        quiet: bool = QUIET,
    ) -> None:
        """Embed geo-tagged satellite tiles with a trained run into a saved faiss index, their coordinates beside it."""
        from ..inference import build_tile_index, load_run, read_tiles
        from ..inference.tile_index import check_target

        check_target(out)  # before any embedding
        source = read_tiles(tiles)
        STDERR.print(f"{counted(len(source), 'tile')}, {source.described}", soft_wrap=True)
        loaded = load_run(run, device)
        with make_progress(quiet) as progress:
            index = build_tile_index(loaded, source, progress, batch_size)
        folder = index.save(out)
        typer.echo(f"wrote {folder} ({counted(len(index), 'tile')}, embedding size {loaded.dim}, run {loaded.name})")

    @app.command("localize")
    def localize_command(
        run: Path = RUN,
        index: Path = typer.Option(..., help="Folder written by `cvbench index` with this run."),
        queries: Path = typer.Option(..., help="Folder of query images (ground panoramas or photos)."),
        truth: Optional[Path] = typer.Option(None, help="CSV of the queries' true positions: path,lat,lon or "
                                                        "path,x,y, optionally tile (paths relative to the CSV)."),
        top_k: int = typer.Option(5, "--top-k", min=1, help="Tiles listed per query."),
        fov: Optional[float] = typer.Option(None, help="Cut full panoramas to this field of view in degrees, as "
                                                       "--fov does in training (default: the run's own)."),
        format: OutputFormat = typer.Option("csv", "--format", help="Output format."),
        out: Optional[Path] = typer.Option(None, help="File to write (default: standard output)."),
        device: Optional[str] = DEVICE,
        batch_size: Optional[int] = BATCH,
        quiet: bool = QUIET,
    ) -> None:
        """Each query image's top-k tiles with path, score and coordinates; the error in metres with --truth."""
        from ..inference import load_run, load_tile_index, localize
        from ..inference.outputs import to_geojson, to_json, write_localization

        tile_index = load_tile_index(index)
        loaded = load_run(run, device)
        with make_progress(quiet) as progress:
            result = localize(loaded, tile_index, queries, top_k, fov, truth, progress, batch_size)
        if out is not None:
            write_localization(result, out, format.value)
        elif format.value == "csv":
            result.table.to_csv(sys.stdout, index=False)
        else:
            import json

            typer.echo(json.dumps((to_geojson if format.value == "geojson" else to_json)(result), indent=1))
        _summarise(result.summary(), out)


def _summarise(summary: dict, out: Optional[Path]) -> None:
    """One line: where the output went, the queries, and with the truth the top-1 error and true-tile count."""
    parts = [f"{summary['queries']} queries localised with run {summary['run']}"]
    if summary["unreadable"]:
        parts.append(f"{summary['unreadable']} unreadable left out")
    if "error_median_m" in summary:
        parts.append(f"top-1 error over {summary['with_truth']} with known positions: median "
                     f"{summary['error_median_m']:.1f} m, mean {summary['error_mean_m']:.1f} m")
    if "true_tile_at_1" in summary:
        parts.append(f"true tile at rank 1 for {summary['true_tile_at_1']}, in the top k for "
                     f"{summary['true_tile_in_top_k']}")
    line = "; ".join(parts) + (f"; wrote {out}" if out is not None else "")
    if out is not None:
        typer.echo(line)
    else:
        STDERR.print(line, soft_wrap=True)
