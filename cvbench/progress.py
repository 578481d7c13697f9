"""Rich progress bars for every long stage; ``quiet`` turns them off for scripts."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

STDERR = Console(stderr=True, log_path=False)  # per-epoch lines without "runner.py:191"


class _Nested(Progress):
    """A progress display that knows whether another one is already on screen.

    The terminal holds one live display at a time; a stage that opens its own
    while an outer one runs (a run inside ``cvbench bench``, the synthetic
    world generated inside a run) gets a silent one instead of an error.
    """

    active = 0

    def __enter__(self) -> "_Nested":
        _Nested.active += 1
        return super().__enter__() if not self.disable else self

    def __exit__(self, *exc) -> None:
        _Nested.active -= 1
        if not self.disable:
            super().__exit__(*exc)


def make_progress(quiet: bool = False) -> Progress:
    """A progress display: description, bar, n/total, a free ``info`` field (loss), elapsed, ETA."""
    return _Nested(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=STDERR,
        disable=quiet or _Nested.active > 0,
        transient=False,
    )


def log(message: str, quiet: bool = False) -> None:
    """A status line on stderr (silent when quiet)."""
    if not quiet:
        STDERR.print(message)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` with its noun in the right number, for messages: ``1 run``, ``2 runs``, ``0 runs``."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
