"""Rich progress bars for every long stage; ``quiet`` turns them off for scripts."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

STDERR = Console(stderr=True)


def make_progress(quiet: bool = False) -> Progress:
    """A progress display: description, bar, n/total, a free ``info`` field (loss), elapsed, ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=STDERR,
        disable=quiet,
        transient=False,
    )


def log(message: str, quiet: bool = False) -> None:
    """A status line on stderr (silent when quiet)."""
    if not quiet:
        STDERR.print(message)
