"""CSV files of image paths with positions: the tiles of an index and the true places of queries.

One header, then one row per image: ``path,lat,lon`` (degrees) or
``path,x,y`` (metres in a projected frame, as the ``pairs`` dataset reads),
plus any further columns (a query's true ``tile``). Paths are relative to
the CSV's folder unless absolute. A bad row is an error naming the file and
line; nothing is skipped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetFormatError, DatasetNotFoundError
from ..evaluation.localisation import Positions

COORDINATES = {"latlon": ("lat", "lon"), "xy": ("x", "y")}
LIMITS = {"lat": 90.0, "lon": 180.0}
HEADER = "path,lat,lon or path,x,y"


@dataclass
class Places:
    """Images (absolute paths), their positions, the line of each in ``source``, and any further columns."""

    paths: list[Path]
    positions: Positions
    source: Path
    lines: list[int]
    extra: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)


def resolve(folder: Path, text: str) -> Path:
    """A path cell: absolute as written, else relative to ``folder`` (the CSV's)."""
    path = Path(text).expanduser()
    return (path if path.is_absolute() else folder / path).resolve()


def read_places(csv: str | Path, what: str = "tile CSV", check_files: bool = True) -> Places:
    """The rows of ``csv``; with ``check_files`` every image must exist (else an error naming its line)."""
    csv = Path(csv).expanduser()
    if not csv.is_file():
        found = "is a folder, not a file" if csv.is_dir() else "does not exist"
        raise DatasetNotFoundError(f"{what} {csv} {found}; expected a CSV file with the header {HEADER}")
    frame = _read_rows(csv)
    kind = next((kind for kind, names in COORDINATES.items() if set(names) <= set(frame.columns)), None)
    if "path" not in frame.columns or kind is None:
        raise DatasetFormatError(f"{csv}:1: the header is {','.join(frame.columns)!r}; expected {HEADER}")
    paths, values, lines = [], [], []
    for index, record in enumerate(frame.to_dict("records")):
        cells = {name: str(value).strip() for name, value in record.items()}
        if not any(cells.values()):
            continue  # a blank line
        line = index + 2
        if not cells["path"]:
            raise DatasetFormatError(f"{csv}:{line}: empty path cell; every row names an image")
        values.append([_coordinate(csv, line, name, cells[name]) for name in COORDINATES[kind]])
        paths.append(resolve(csv.parent, cells["path"]))
        lines.append(line)
        if check_files and not paths[-1].is_file():
            raise DatasetFormatError(f"{csv}:{line}: image {cells['path']} does not exist (looked for {paths[-1]})")
    if not paths:
        raise DatasetFormatError(f"{csv}: no rows; expected one row per image under the header {HEADER}")
    extra = {name: [str(frame[name].iloc[line - 2]).strip() for line in lines]
             for name in frame.columns if name != "path" and name not in COORDINATES[kind]}
    return Places(paths, Positions(kind, np.asarray(values, np.float64).reshape(-1, 2)), csv, lines, extra)


def _read_rows(csv: Path) -> pd.DataFrame:
    """The CSV as strings under its lower-cased header, blank lines kept so that row i is on line i + 2.

    The header is read as a row (``header=None``): a row with more fields
    than the header is then an error naming its line, where pandas would
    take the first column for an index and shift every cell silently.
    """
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, skip_blank_lines=False, header=None)
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, line, saw = found.groups()
            raise DatasetFormatError(f"{csv}:{line}: {saw} fields where the header has {expected}; "
                                     f"expected {HEADER}") from None
        raise DatasetFormatError(f"{csv}: does not parse as a CSV ({str(exc).strip()}); expected {HEADER}") from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{csv}: does not parse as a CSV ({str(exc).strip()}); expected {HEADER}") from None
    header = [str(column).strip().lower() for column in frame.iloc[0]]
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = header
    return frame


def _coordinate(csv: Path, line: int, column: str, text: str) -> float:
    """The cell's number, or an error naming the file, line and column."""
    unit = "degrees" if column in LIMITS else "metres"
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(f"{csv}:{line}: {column} {text!r} is not a number (expected {unit})") from None
    if not math.isfinite(value) or abs(value) > LIMITS.get(column, math.inf):
        within = f" within ±{LIMITS[column]:g}" if column in LIMITS else ""
        raise DatasetFormatError(f"{csv}:{line}: {column} {text!r} is out of range (expected {unit}{within})")
    return value
