"""``cvbench data``: look at a dataset, preview pairs, export one to image files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ..data import SUBSETS, load_subset
from ..preview import export_pairs, preview_sheet
from ..registry import create
from ..spec import parse_options

app = typer.Typer(help="Inspect, preview and export datasets.", no_args_is_help=True)

DATASET = typer.Option(None, help="Dataset plugin (the default preset's dataset when omitted).")
ROOT = typer.Option(None, "--data-root", help="Folder of a dataset on disk.")
OPTION = typer.Option(None, "--data-option", help="Dataset option KEY=VALUE (repeatable).")


def _open(dataset: Optional[str], data_root: Optional[Path], data_option: Optional[list[str]]):
    name = dataset or create("preset", "default")["dataset"]
    return create("dataset", name, data_root, **parse_options(data_option or [], "--data-option"))


@app.command("info")
def info(dataset: Optional[str] = DATASET, data_root: Optional[Path] = ROOT, data_option: Optional[list[str]] = OPTION) -> None:
    """Splits of a dataset with the number of queries and references of each subset."""
    source = _open(dataset, data_root, data_option)
    table = Table(title=f"dataset {dataset or ''}".strip())
    for column in ("split", "subset", "queries", "references", "semi-positives", "cities"):
        table.add_column(column)
    for split in source.splits():
        for subset in SUBSETS:
            pairs = load_subset(source, split, subset)
            cities = sorted(pairs.ground_meta["city"].unique()) if "city" in pairs.ground_meta else []
            semi = "yes" if pairs.semi_positives is not None else "no"
            table.add_row(split, subset, str(pairs.num_queries), str(pairs.num_references), semi, ", ".join(map(str, cities)))
    Console().print(table)


@app.command("preview")
def preview(out: Path = typer.Option(Path("preview.png"), help="PNG file to write."),
            dataset: Optional[str] = DATASET, data_root: Optional[Path] = ROOT, data_option: Optional[list[str]] = OPTION,
            split: Optional[str] = typer.Option(None, help="Split (the dataset's first by default)."),
            subset: str = typer.Option("val", help="train or val."),
            count: int = typer.Option(8, help="Number of pairs."),
            seed: int = typer.Option(0, help="Which pairs to show.")) -> None:
    """Write a PNG sheet of ground panoramas next to their aerial tiles."""
    source = _open(dataset, data_root, data_option)
    pairs = load_subset(source, split or source.splits()[0], subset)
    chosen = np.sort(np.random.default_rng(seed).choice(pairs.num_queries, min(count, pairs.num_queries), replace=False))
    preview_sheet(pairs, chosen, out, title=f"{dataset or ''} {split or source.splits()[0]} {subset}".strip())
    typer.echo(f"wrote {out}")


@app.command("synth")
def synth(out: Path = typer.Option(..., help="Folder to write the images and pairs.csv into."),
          dataset: str = DATASET, data_root: Optional[Path] = ROOT, data_option: Optional[list[str]] = OPTION,
          split: Optional[str] = typer.Option(None, help="Split to export (the dataset's first by default).")) -> None:
    """Export a dataset's split as PNG files plus pairs.csv (the bring-your-own-city layout)."""
    source = _open(dataset, data_root, data_option)
    split = split or source.splits()[0]
    subsets = {subset: load_subset(source, split, subset) for subset in SUBSETS}
    index = export_pairs(subsets, out)
    typer.echo(f"wrote {index} ({sum(p.num_queries for p in subsets.values())} pairs)")
