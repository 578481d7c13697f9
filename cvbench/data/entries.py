"""The entries of a dataset's list files: each counted once, at least one, and inside the data root.

Label lines, split lists, CSV rows and index arrays are where a dataset
download goes wrong silently: a line listed twice duplicates a query or a
gallery tile and skews R@k, an empty file leaves a subset that only fails in
evaluation, and a row naming ``../../../etc/passwd`` opens a file outside the
dataset. Every dataset plugin checks its entries with the helpers here, so
that each of these is reported the same way, naming the file and the line:

- :func:`first_occurrences` keeps the first entry of each key and reports
  the later ones (a :class:`DatasetWarning` in a run, one warning each in
  ``cvbench data check``);
- :func:`require_entries` reports a file or subset with nothing in it as an
  error, so a run stops before any compute;
- :func:`inside_root` refuses a path that leaves the data root, unless the
  dataset's ``allow_outside_root`` option says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from ..errors import SpecError
from .problems import Problem, report_problem, report_skipped

T = TypeVar("T")

OUTSIDE_ROOT_OPTION = "allow_outside_root"
SHOWN_KEY = 120  # characters of an entry quoted in a duplicate's message


def first_occurrences(path: Path | str, items: Sequence[T], key: Callable[[T], str], line: Callable[[T], int],
                      what: str, unit: str = "line") -> list[T]:
    """``items`` without the repeats of a key: the first occurrence of each is kept, each later one reported.

    ``line(item)`` is where the item is in ``path``; with ``unit="line"`` it
    is the file's line (reported as ``path:LINE``), otherwise ``unit`` names
    what the number counts (``"'trainSet.trainInd' entry"``). ``what`` says
    what the items are, e.g. "panorama lines". Reported through
    :func:`report_skipped`: one :class:`DatasetWarning` in a run, one
    warning per repeat in ``cvbench data check``.
    """
    first: dict[str, int] = {}
    kept: list[T] = []
    repeats: list[Problem] = []
    for item in items:
        name, number = key(item), line(item)
        if name not in first:
            first[name] = number
            kept.append(item)
            continue
        shown = name if len(name) <= SHOWN_KEY else f"{name[:SHOWN_KEY]}..."
        if unit == "line":
            repeats.append(Problem(str(path), f"repeats line {first[name]} ({shown})", number, fatal=False))
        else:
            repeats.append(Problem(str(path), f"{unit} {number} repeats {unit} {first[name]} ({shown})", fatal=False))
    report_skipped(f"duplicated {what} of {path} (the first occurrence of each is kept, the repeats dropped)",
                   repeats)
    return kept


def require_entries(path: Path | str, count: int, expected: str) -> bool:
    """Whether ``count`` > 0; otherwise an error naming ``path`` (a run stops here, before any compute).

    ``expected`` says what the file should list, e.g. "one line per
    panorama: ...". The message says the file lists nothing.
    """
    if count > 0:
        return True
    report_problem(path, f"lists nothing; expected {expected}")
    return False


def outside_root_allowed(dataset: str, value: object) -> bool:
    """The ``allow_outside_root`` option of ``dataset``, checked: true or false (``--data-option KEY=true``)."""
    if not isinstance(value, bool):
        raise SpecError(f"{dataset}: option {OUTSIDE_ROOT_OPTION} must be true or false, got {value!r}")
    return value


def inside_root(root: Path, name: str, listed_in: Path | str, line: int | None, allowed: bool = False) -> Path | None:
    """``root / name`` normalised, or None after reporting a ``name`` that leaves ``root``.

    ``name`` may be relative (to ``root``) or absolute; either must end up
    inside ``root`` once ``..`` parts are resolved, unless ``allowed`` (the
    dataset's ``allow_outside_root`` option). The check is on the names as
    written: a symbolic link inside the root that the owner of the data put
    there is followed as usual.
    """
    root = Path(os.path.normpath(Path(root).absolute()))
    path = Path(os.path.normpath(root / name))
    if allowed or path == root or root in path.parents:
        return path
    report_problem(listed_in, f"{name!r} points outside the data root {root}; expected a path inside it "
                              f"(--data-option {OUTSIDE_ROOT_OPTION}=true allows paths outside)", line=line)
    return None
