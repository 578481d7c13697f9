"""``cvbench data``: look at a dataset, preview pairs, export one to image files.

The dataset modules (numpy, pandas, the plugins and their torch) are imported
inside the commands, so ``cvbench --help`` does not load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..progress import make_progress
from ..spec import parse_options

if TYPE_CHECKING:
    from ..data.check import CheckReport

app = typer.Typer(help="Inspect, preview and export datasets.", no_args_is_help=True)

DATASET = typer.Option(None, help="Dataset plugin (the default preset's dataset when omitted).")
ROOT = typer.Option(None, "--data-root", help="Folder of a dataset on disk.")
OPTION = typer.Option(None, "--data-option", help="Dataset option KEY=VALUE (repeatable).")


def _name(dataset: Optional[str]) -> str:
    """The dataset asked for, or the default preset's."""
    from ..contract.registry import create

    return dataset or create("preset", "default")["dataset"]


def _open(dataset: Optional[str], data_root: Optional[Path], data_option: Optional[list[str]]):
    from ..contract.registry import create

    return create("dataset", _name(dataset), data_root, **parse_options(data_option or [], "--data-option"))


def _counts_table(title: str, report: CheckReport) -> Table:
    table = Table(title=title)
    for column in ("split", "subset", "queries", "references", "semi-positives", "cities"):
        table.add_column(column)
    for count in report.counts:
        queries = str(count.queries) if count.query_view == "ground" else f"{count.queries} ({count.query_view})"
        table.add_row(count.split, count.subset, queries, str(count.references),
                      "yes" if count.semi_positives else "no", ", ".join(count.cities))
    return table


def _inventory_table(report: CheckReport) -> Table | None:
    """What each folder of the dataset holds, where the dataset says (``inventory()``)."""
    if not report.inventory:
        return None
    table = Table(title="folders")
    table.add_column("folder")
    table.add_column("holds")
    for folder, holds in report.inventory.items():
        table.add_row(folder, holds)
    return table


def _title(dataset: Optional[str], data_root: Optional[Path]) -> str:
    return f"{_name(dataset)} at {data_root}" if data_root else _name(dataset)


@app.command("info")
def info(dataset: Optional[str] = DATASET, data_root: Optional[Path] = ROOT,
         data_option: Optional[list[str]] = OPTION) -> None:
    """Splits of a dataset with the number of queries and references of each subset."""
    from ..data.check import check_dataset

    report = check_dataset(_open(dataset, data_root, data_option), images=False)
    console = Console()
    console.print(_counts_table(_title(dataset, data_root), report))
    if report.problems:
        console.print(Text(f"{len(report.errors)} errors, {len(report.warnings)} warnings: "
                           "`cvbench data check` lists them", style="yellow"))


@app.command("check")
def check(dataset: Optional[str] = DATASET, data_root: Optional[Path] = ROOT, data_option: Optional[list[str]] = OPTION,
          split: Optional[list[str]] = typer.Option(None, help="Protocol to check (repeatable; all by default)."),
          images: bool = typer.Option(True, "--images/--no-images",
                                      help="Decode every image file (slow on a full dataset)."),
          quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bar.")) -> None:
    """Validate a dataset folder without training: counts, and every problem with its file and line.

    Exits 0 when the dataset is usable (warnings only), 1 when it has errors,
    2 when the folder is not the dataset at all (the expected layout is printed).
    """
    from ..data.check import check_dataset

    source = _open(dataset, data_root, data_option)
    with make_progress(quiet) as progress:
        report = check_dataset(source, split or None, images, progress)
    console = Console()
    if _inventory_table(report) is not None:
        console.print(_inventory_table(report))
    console.print(_counts_table(_title(dataset, data_root), report))
    for title, problems, style in (("errors", report.errors, "bold red"), ("warnings", report.warnings, "yellow")):
        if problems:
            console.print(Text(f"{len(problems)} {title}:", style=style))
            for problem in problems:
                console.print(Text(f"  {problem}"), soft_wrap=True)
    checked = f", {report.images_checked} image files decoded" if images else " (image files not decoded)"
    console.print(Text(f"{len(report.errors)} errors, {len(report.warnings)} warnings{checked}"))
    if report.errors:
        raise typer.Exit(1)


@app.command("preview")
def preview(out: Path = typer.Option(Path("preview.png"), help="PNG file to write."),
            dataset: Optional[str] = DATASET, data_root: Optional[Path] = ROOT,
            data_option: Optional[list[str]] = OPTION,
            split: Optional[str] = typer.Option(None, help="Split (the dataset's first by default)."),
            subset: Literal["train", "val"] = typer.Option("val", help="Subset of the split."),
            count: int = typer.Option(8, help="Number of pairs."),
            seed: int = typer.Option(0, help="Which pairs to show.")) -> None:
    """Write a PNG sheet of ground panoramas next to their aerial tiles."""
    import numpy as np

    from ..data import load_subset
    from ..data.preview import preview_sheet

    source = _open(dataset, data_root, data_option)
    pairs = load_subset(source, split or source.splits()[0], subset)
    count = min(count, pairs.num_queries)
    chosen = np.sort(np.random.default_rng(seed).choice(pairs.num_queries, count, replace=False))
    preview_sheet(pairs, chosen, out, title=f"{dataset or ''} {split or source.splits()[0]} {subset}".strip())
    typer.echo(f"wrote {out}")


@app.command("synth")
def synth(out: Path = typer.Option(..., help="Folder to write the images and pairs.csv into."),
          dataset: str = DATASET, data_root: Optional[Path] = ROOT, data_option: Optional[list[str]] = OPTION,
          split: Optional[str] = typer.Option(None, help="Split to export (the dataset's first by default).")) -> None:
    """Export a dataset's split as PNG files plus pairs.csv (the bring-your-own-city layout).

    Each subset's folder also gets tiles.csv and queries.csv (positions, and each query's true tile), which
    `cvbench index --tiles` and `cvbench localize --truth` read.
    """
    from ..data import SUBSETS, load_subset
    from ..data.preview import LOCALISATION_FILES, export_pairs

    source = _open(dataset, data_root, data_option)
    split = split or source.splits()[0]
    subsets = {subset: load_subset(source, split, subset) for subset in SUBSETS}
    index = export_pairs(subsets, out)
    typer.echo(f"wrote {index} ({sum(p.num_queries for p in subsets.values())} pairs)")
    for subset in subsets:
        written = [out / subset / name for name in LOCALISATION_FILES if (out / subset / name).is_file()]
        if written:
            typer.echo(f"wrote {', '.join(map(str, written))} (for `cvbench index --tiles` and `localize --truth`)")
