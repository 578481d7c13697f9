"""Checking a dataset folder against the layout its authors distribute it in.

Real dataset plugins read the folders exactly as downloaded. When something
is missing, the error lists everything missing at once, draws the layout that
was expected and says where the data comes from, so that one look fixes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..errors import CvbenchError, DatasetFormatError, DatasetNotFoundError


def require_layout(dataset: str, root: Path | str | None, required: Sequence[str], layout: str,
                   source: str) -> Path:
    """``root`` as a Path once every ``required`` path (relative to it) exists.

    Otherwise :class:`DatasetNotFoundError` naming each missing path, then
    ``layout`` (the expected tree) and ``source`` (where to download it).
    """
    help_text = f"Expected layout:\n{layout.rstrip()}\n{source.rstrip()}"
    if root is None:
        raise DatasetNotFoundError(f"the {dataset} dataset needs --data-root: the folder it was unpacked to.\n"
                                   f"{help_text}")
    root = expand_root(root, dataset)
    if not path_is(Path.is_dir, root):
        raise DatasetNotFoundError(f"{dataset} data root {root} is not a folder.\n{help_text}")
    missing = [str(root / name) for name in required if not path_is(Path.exists, root / name)]
    if missing:
        listed = "\n".join(f"  missing: {path}" for path in missing)
        raise DatasetNotFoundError(f"{root} does not hold the {dataset} dataset:\n{listed}\n{help_text}")
    return root


def expand_root(root: Path | str, dataset: str) -> Path:
    """``root`` with ``~`` expanded; DatasetNotFoundError when ``~user`` names no user."""
    return expand_user(root, DatasetNotFoundError, f"{dataset} data root {root}")


def expand_user(path: Path | str, error: type[CvbenchError], what: str) -> Path:
    """``path`` with ``~`` expanded; ``error("<what>: <why>")`` when ``~user`` names no user."""
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:  # Path("~nobody").expanduser()
        raise error(f"{what}: {exc}") from None


def path_is(check: Callable[[Path], bool], path: Path) -> bool:
    """``check(path)`` (``Path.is_dir``, ``is_file``, ``exists``), False where the system cannot even look
    the name up (a name too long for it, on Python < 3.14)."""
    try:
        return check(path)
    except OSError:
        return False


def folder_names(folder: Path | str) -> set[str]:
    """The names in ``folder`` (empty when it does not exist or cannot be listed), listed in one call.

    Checking a hundred thousand files one ``stat`` at a time is slow on
    network file systems; one listing per folder is not.
    """
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except (OSError, ValueError):  # missing, not a folder, a name too long or holding a NUL: nothing there
        return set()


class Listings:
    """Whether files exist, each folder listed once (see :func:`folder_names`) and remembered."""

    def __init__(self) -> None:
        self._names: dict[Path, set[str]] = {}

    def names(self, folder: Path | str) -> set[str]:
        """The names in ``folder``, listed on first use."""
        folder = Path(folder)
        if folder not in self._names:
            self._names[folder] = folder_names(folder)
        return self._names[folder]

    def exists(self, path: Path | str) -> bool:
        """Whether ``path`` is in its folder's listing."""
        path = Path(path)
        return path.name in self.names(path.parent)


def text_lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """(line number from 1, stripped text) for each non-blank line of a UTF-8 text file.

    A UTF-8 byte order mark is skipped and LF, CRLF and CR all end a line;
    nothing else does (``str.splitlines`` would also split at a form feed or
    U+2028, and the line numbers would no longer be the file's).
    """
    for number, line in enumerate(utf8_text(path).split("\n"), start=1):
        line = line.strip()
        if line:
            yield number, line


def utf8_text(path: Path | str) -> str:
    """The text of a UTF-8 file (a byte order mark skipped), every line ending (CRLF, CR) made LF.

    A byte that is not UTF-8 is a :class:`DatasetFormatError` naming the
    file and the line it is on, as an editor counts lines.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"file is missing: {path}") from None
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot be read ({exc.strerror or exc}); expected a UTF-8 text file"
                                 ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(_newlines(exc.object[:exc.start]).split(b"\n"))
        bad = exc.object[exc.start:exc.start + 1].hex()
        raise DatasetFormatError(f"{path}:{line}: not a UTF-8 text file ({exc.reason}: byte 0x{bad}); "
                                 "expected UTF-8 text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _newlines(data: bytes) -> bytes:
    """``data`` with CRLF and CR line endings made LF."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
