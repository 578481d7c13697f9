"""Problems found in a dataset on disk: they stop a run, or are collected by ``cvbench data check``.

A dataset plugin reports what is wrong where it finds it, with the file and,
for label files, the line:

- :func:`report_problem` for something that makes the data unusable (a label
  line that does not parse). In a run it raises :class:`DatasetFormatError`
  at once; under :func:`collect_problems` it is recorded and loading goes on,
  so that ``cvbench data check`` lists every problem in one pass.
- :func:`report_skipped` for items the dataset leaves out on purpose (pairs
  whose image files are missing). A run gets one :class:`DatasetWarning`
  summing them up; ``data check`` lists each.

Third-party dataset plugins use the same two functions.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import DatasetFormatError

SHOWN_IN_WARNING = 3


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: where (file, line) and what."""

    path: str
    message: str
    line: int | None = None
    fatal: bool = True

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class DatasetWarning(UserWarning):
    """Data a dataset skipped or converted; the message says what and how much."""


_collected: ContextVar[list[Problem] | None] = ContextVar("cvbench_dataset_problems", default=None)


@contextmanager
def collect_problems() -> Iterator[list[Problem]]:
    """Record problems instead of raising, for ``cvbench data check``; yields the growing list."""
    found: list[Problem] = []
    token = _collected.set(found)
    try:
        yield found
    finally:
        _collected.reset(token)


def collecting() -> bool:
    """Whether problems are being collected (a check) rather than raised (a run)."""
    return _collected.get() is not None


def report_problem(path: str | Path, message: str, line: int | None = None) -> None:
    """A problem that makes the data unusable: raises :class:`DatasetFormatError` unless collecting."""
    problem = Problem(str(path), message, line)
    found = _collected.get()
    if found is None:
        raise DatasetFormatError(str(problem))
    found.append(problem)


def report_skipped(what: str, problems: Sequence[Problem]) -> None:
    """Items left out on purpose: each recorded when collecting, else one warning with the count.

    ``what`` says what was skipped, e.g. "CVACT val pairs whose image files are missing".
    """
    if not problems:
        return
    found = _collected.get()
    if found is not None:
        found.extend(Problem(p.path, p.message, p.line, fatal=False) for p in problems)
        return
    shown = "; ".join(str(p) for p in problems[:SHOWN_IN_WARNING])
    more = f" and {len(problems) - SHOWN_IN_WARNING} more" if len(problems) > SHOWN_IN_WARNING else ""
    warnings.warn(f"skipped {len(problems)} {what}: {shown}{more} (`cvbench data check` lists them all)",
                  DatasetWarning, stacklevel=2)
