"""The ``pairs`` dataset plugin: bring your own city as a CSV of ground panoramas and their aerial tiles.

The thesis' practical conclusion is to pre-train on the target city's own
satellite tiles; this plugin lets anyone do that on their own data. A CSV
(``pairs.csv``, or any file passed as ``--data-root``) lists one ground/aerial
pair per row; a row with an empty ``ground`` cell adds an unlabelled tile of
the area to the gallery. ``cvbench data synth --out DIR`` writes a folder in
this format.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvbench.contract import Dataset
from cvbench.contract.hookspecs import hookimpl
from cvbench.data import CrossViewPairs, FileImages
from cvbench.data.entries import OUTSIDE_ROOT_OPTION, first_occurrences, inside_root, outside_root_allowed
from cvbench.data.layout import Listings, expand_root, path_is, utf8_text
from cvbench.data.problems import Problem, report_problem, report_skipped
from cvbench.errors import DatasetNotFoundError, SpecError

CSV_NAME = "pairs.csv"
TRAIN = "train"
HOLDOUT_PROTOCOL = "val"
OPTIONS = {"val_fraction": 0.2, "seed": 0}
LOCATIONS = (("lat", "lon"), ("x", "y"))
UNITS = {"lat": "degrees", "lon": "degrees", "x": "metres", "y": "metres"}
LIMITS = {"lat": 90.0, "lon": 180.0}
HEADER = "ground,aerial,lat,lon[,split][,city]  or  ground,aerial,x,y[,split][,city]"

FORMAT = f"""\
DIR/pairs.csv (or the CSV file itself as --data-root), image paths relative to the CSV's folder:
  ground,aerial,lat,lon,split,city
  ground/0001.jpg,aerial/0001.png,48.13720,11.57560,train,munich
  ground/0002.jpg,aerial/0002.png,48.13790,11.57610,val,munich
  ,aerial/0003.png,48.13850,11.57700,val,munich
Header: {HEADER}.
  ground, aerial  image paths; an empty ground cell adds an aerial-only tile to its split's gallery
  lat,lon or x,y  the location, in degrees or metres (an empty cell: unknown)
  split           optional: train, plus one value per evaluation protocol (without the column,
                  a seeded val_fraction of the queries is held out as protocol val)
  city            optional
`cvbench data synth --out DIR` writes such a folder from the synthetic world; then pass --data-root DIR.
"""

@dataclass(frozen=True)
class Row:
    """One parsed CSV row: ``ground`` is "" for an aerial-only tile; ``location`` follows the location columns."""

    line: int
    ground: str
    aerial: str
    split: str
    city: str
    location: tuple[float, ...]


@dataclass
class Header:
    """The CSV as read (cells as strings), its location columns and the protocols its split column names."""

    frame: pd.DataFrame
    location: list[str]
    protocols: list[str]


class Pairs(Dataset):
    """Ground/aerial pairs listed in a CSV: many queries may share a tile; extra tiles widen a gallery.

    ``root`` is the CSV file or a folder holding ``pairs.csv``. A subset's
    gallery is the distinct aerial paths of its rows in order of first
    appearance, and each query's positive indexes it. With a ``split`` column,
    every value other than ``train`` is a protocol evaluated against the
    ``train`` rows. Without one there is one protocol, ``val``, holding out a
    seeded random ``val_fraction`` of the queries; aerial-only rows then join
    the val gallery (the evaluation area's other tiles: distractors, and
    pre-training material with ``--pretrain-data val`` or ``all``).
    Metadata: ``city``, the location columns as given (an empty cell is
    unknown, NaN), and ``name`` (the path as written); a tile takes its
    aerial-only row's values, else those of the first query naming it.
    Options: ``val_fraction`` (0.2, 0 < f < 1) and ``seed`` (0), used only
    without a ``split`` column; ``allow_outside_root`` (false) accepts image
    paths outside the CSV's folder. Malformed rows and paths outside the
    folder are errors naming their CSV line; rows whose image files are
    missing, and the later rows of a ground image (or aerial-only tile)
    listed twice, are skipped with a warning.
    """

    def __init__(self, root: Path | str | None = None, allow_outside_root: bool = False, **options: Any) -> None:
        self.csv = find_csv(root)
        self.allow_outside_root = outside_root_allowed("pairs", allow_outside_root)
        self.val_fraction, self.seed = parse_options(options)
        self._options_given = sorted(options)
        self._header: Header | None = None
        self._rows: list[Row] | None = None
        self._built: dict[str, CrossViewPairs] = {}

    def splits(self) -> list[str]:
        """The protocols: the split values other than ``train`` in order of appearance, or ``["val"]``.

        Only the header and the split column are checked here; rows are
        checked by the first ``load``, so that ``cvbench data check``
        collects every bad row.
        """
        return list(self.header().protocols)

    @staticmethod
    def image_sizes() -> dict[str, tuple[int, int]]:
        """VIGOR's sizes (224x448 panoramas, 224x224 tiles): user data has no thesis default; these suit Street View."""
        return {"ground": (224, 448), "aerial": (224, 224)}

    def describe(self) -> str:
        return f"the pairs dataset {self.csv}"

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` rows (one set, whatever the protocol) or the ``val`` side (the rows of ``split``)."""
        key = TRAIN if subset == "train" else split
        if key not in self._built:
            rows = [row for row in self.rows() if row.split == key]
            self._built[key] = build_pairs(rows, self.csv.parent, self.header().location)
            if self.header().location and not self._built[key].num_queries:
                report_problem(self.csv, f"has no usable query row of split {key!r}: expected rows with a ground "
                                         "image, whose two image files exist")
        return self._built[key]

    def header(self) -> Header:
        """The CSV read and its columns checked (cached)."""
        if self._header is None:
            self._header = self._read_header()
        return self._header

    def rows(self) -> list[Row]:
        """The usable rows, each with its split: parsed, checked for image files and cached on first use."""
        if self._rows is None:
            header = self.header()
            rows = parse_rows(self.csv, header.frame, header.location) if header.location else []
            rows = first_occurrences(self.csv, inside(self.csv, rows, self.allow_outside_root),
                                     key=lambda row: row_key(row, self.csv.parent), line=lambda row: row.line,
                                     what="rows")
            if header.location and "split" not in header.frame.columns:
                rows = holdout(self.csv, rows, self.val_fraction, self.seed)
            self._rows = present_rows(self.csv, rows)
        return self._rows

    def _read_header(self) -> Header:
        frame = read_frame(self.csv)
        location = location_columns(self.csv, frame) if frame is not None else None
        if frame is None or location is None:
            return Header(pd.DataFrame(), [], [])
        if "split" not in frame.columns:
            return Header(frame, location, [HOLDOUT_PROTOCOL])
        if self._options_given:
            raise SpecError(f"--data-option {', '.join(self._options_given)} applies only to a CSV without a "
                            f"split column; {self.csv} has one, and its values decide the protocols")
        return Header(frame, location, split_protocols(self.csv, frame["split"]))


def find_csv(root: Path | str | None) -> Path:
    """The CSV that ``root`` names: the file itself, or ``pairs.csv`` in the folder."""
    if root is None:
        raise DatasetNotFoundError(f"the pairs dataset needs --data-root: a CSV file or a folder holding "
                                   f"{CSV_NAME}.\nExpected:\n{FORMAT}")
    root = expand_root(root, "pairs").absolute()
    if path_is(Path.is_file, root):
        return root
    is_dir = path_is(Path.is_dir, root)
    if is_dir and path_is(Path.is_file, root / CSV_NAME):
        return root / CSV_NAME
    what = f"folder {root} has no {CSV_NAME}" if is_dir else f"{root} does not exist"
    raise DatasetNotFoundError(f"pairs data root: {what}.\nExpected:\n{FORMAT}")


def parse_options(options: dict[str, Any]) -> tuple[float, int]:
    """``(val_fraction, seed)`` from keyword options, coercing CLI strings; SpecError for a bad or unknown one."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SpecError(f"the pairs dataset has no option {', '.join(unknown)}; it accepts: {', '.join(OPTIONS)}, "
                        f"{OUTSIDE_ROOT_OPTION}")
    try:
        fraction = float(options.get("val_fraction", OPTIONS["val_fraction"]))
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
        fraction = math.nan
    if not 0 < fraction < 1:
        raise SpecError(f"--data-option val_fraction={options['val_fraction']!r}: expected a number between 0 and 1 "
                        "(exclusive), e.g. 0.2")
    try:
        seed = int(str(options.get("seed", OPTIONS["seed"])))
    except ValueError:
        seed = -1
    if seed < 0:
        raise SpecError(f"--data-option seed={options['seed']!r}: expected a non-negative integer")
    return fraction, seed


def read_frame(csv: Path) -> pd.DataFrame | None:
    """The CSV as strings, blank lines kept so that row i is on line i + 2; None (reported) if it does not parse.

    The header is read as a row (``header=None``): a row with more fields than
    the header is then an error naming its line, where pandas would otherwise
    take the first column for an index and shift every cell silently.
    """
    try:
        frame = pd.read_csv(io.StringIO(utf8_text(csv)), dtype=str, keep_default_na=False, skip_blank_lines=False,
                            header=None)
    except pd.errors.EmptyDataError:
        report_problem(csv, f"the file is empty; expected a header line {HEADER} and one row per pair")
        return None
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        report_problem(csv, f"does not parse as CSV ({exc}); every row needs the header's number of fields",
                       line=int(found.group(1)) if found else None)
        return None
    columns = [str(column).strip().lower() or f"(column {i + 1})" for i, column in enumerate(frame.iloc[0])]
    twice = sorted({column for column in columns if columns.count(column) > 1})
    if twice:
        report_problem(csv, f"the header names column {', '.join(map(repr, twice))} more than once; expected {HEADER}",
                       line=1)
        return None
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = columns
    return frame


def location_columns(csv: Path, frame: pd.DataFrame) -> list[str] | None:
    """The location columns present (lat, lon and/or x, y); None (reported) when a required column is missing."""
    columns = set(frame.columns)
    missing = [name for name in ("ground", "aerial") if name not in columns]
    present = [name for pair in LOCATIONS if set(pair) <= columns for name in pair]
    halves = [f"{b if a in columns else a} (beside {a if a in columns else b})"
              for a, b in LOCATIONS if len({a, b} & columns) == 1]
    missing += halves or ([] if present else ["a location: lat,lon or x,y"])
    if missing:
        report_problem(csv, f"missing column {'; '.join(missing)}: the header is {','.join(frame.columns)!r}, "
                            f"expected {HEADER}")
        return None
    return present


def parse_rows(csv: Path, frame: pd.DataFrame, location: list[str]) -> list[Row]:
    """The well-formed rows; each malformed cell is reported with its line and the row left out."""
    has_split, has_city = "split" in frame.columns, "city" in frame.columns
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        cells = {name: str(value).strip() for name, value in record.items()}
        if not any(cells.values()):
            continue  # a blank line
        line = index + 2
        problems = [] if cells["aerial"] else ["empty aerial cell: every row names its aerial tile"]
        if has_split and not cells["split"]:
            problems.append("empty split cell: expected train or the name of an evaluation protocol")
        values = [coordinate(name, cells[name]) for name in location]
        problems += [value for value in values if isinstance(value, str)]
        for problem in problems:
            report_problem(csv, problem, line=line)
        if not problems:
            rows.append(Row(line, cells["ground"], cells["aerial"], cells["split"] if has_split else "",
                            cells["city"] if has_city else "", tuple(values)))
    return rows


def coordinate(column: str, text: str) -> float | str:
    """The cell's value (NaN when empty: an unknown location), or a message saying why it is not one."""
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return f"{column} {text!r} is not a number (expected {UNITS[column]})"
    if not math.isfinite(value) or abs(value) > LIMITS.get(column, math.inf):
        within = f" within ±{LIMITS[column]:g}" if column in LIMITS else ""
        return f"{column} {text!r} is out of range (expected {UNITS[column]}{within})"
    return value


def split_protocols(csv: Path, column: pd.Series) -> list[str]:
    """The split values other than ``train``, in order of first appearance; both kinds must be there."""
    values = list(dict.fromkeys(value.strip() for value in column if value.strip()))
    protocols = [value for value in values if value != TRAIN]
    if TRAIN not in values:
        report_problem(csv, f"the split column has no {TRAIN!r} row; every protocol ({', '.join(protocols) or 'none'}) "
                            f"is evaluated against the {TRAIN} rows")
    if not protocols:
        report_problem(csv, f"the split column has only {TRAIN!r} rows; add rows of an evaluation split such as val")
    return protocols


def holdout(csv: Path, rows: list[Row], fraction: float, seed: int) -> list[Row]:
    """The rows with a split assigned: a seeded ``fraction`` of the queries and every aerial-only tile to val."""
    queries = [i for i, row in enumerate(rows) if row.ground]
    if len(queries) < 2:
        report_problem(csv, f"has {len(queries)} query row(s); holding out val_fraction={fraction:g} of them needs "
                            "at least 2 (or add a split column)")
    count = min(max(round(fraction * len(queries)), 1), len(queries) - 1) if len(queries) >= 2 else 0
    held = {queries[i] for i in np.random.default_rng(seed).choice(len(queries), count, replace=False)}
    return [replace(row, split=HOLDOUT_PROTOCOL if i in held or not row.ground else TRAIN)
            for i, row in enumerate(rows)]


def inside(csv: Path, rows: list[Row], allowed: bool) -> list[Row]:
    """The rows whose image paths stay inside the CSV's folder; the others are reported (unless ``allowed``)."""
    return [row for row in rows if all([inside_root(csv.parent, name, csv, row.line, allowed)
                                        for name in (row.ground, row.aerial) if name])]


def row_key(row: Row, folder: Path) -> str:
    """What makes a row a repeat: its ground image (a second query of it), or for an aerial-only row its tile."""
    return f"ground {resolve(folder, row.ground)}" if row.ground else f"aerial-only tile {resolve(folder, row.aerial)}"


def resolve(folder: Path, name: str) -> Path:
    """An image path of the CSV: absolute as written, relative against the CSV's folder."""
    return Path(os.path.normpath(folder / name))


def present_rows(csv: Path, rows: list[Row]) -> list[Row]:
    """The rows whose image files exist; the others are skipped and reported (one listing per folder)."""
    listings = Listings()
    kept, skipped = [], []
    for row in rows:
        paths = [resolve(csv.parent, name) for name in (row.ground, row.aerial) if name]
        absent = [str(path) for path in paths if not listings.exists(path)]
        if absent:
            skipped.append(Problem(str(csv), f"missing image {', '.join(absent)}; row skipped", row.line))
        else:
            kept.append(row)
    report_skipped(f"pairs rows of {csv.name} whose image files are missing", skipped)
    return kept


def build_pairs(rows: list[Row], folder: Path, location: list[str]) -> CrossViewPairs:
    """Queries (rows with a ground image) against the distinct tiles of ``rows``, in order of appearance."""
    index: dict[Path, int] = {}
    tiles: list[Row] = []
    for row in rows:
        path = resolve(folder, row.aerial)
        if path not in index:
            index[path] = len(tiles)
            tiles.append(row)
        elif not row.ground and tiles[index[path]].ground:
            tiles[index[path]] = row  # an aerial-only row describes the tile itself
    queries = [row for row in rows if row.ground]
    return CrossViewPairs(
        ground=FileImages([resolve(folder, row.ground) for row in queries]),
        aerial=FileImages([resolve(folder, row.aerial) for row in tiles]),
        positives=np.array([index[resolve(folder, row.aerial)] for row in queries], dtype=np.int64),
        ground_meta=metadata(queries, location, "ground"),
        aerial_meta=metadata(tiles, location, "aerial"))


def metadata(rows: list[Row], location: list[str], view: str) -> pd.DataFrame:
    """``city``, the location columns and ``name`` (the ``view`` path as written) of each row."""
    frame = pd.DataFrame({"city": [row.city for row in rows]})
    for position, column in enumerate(location):
        frame[column] = np.array([row.location[position] for row in rows], dtype=float)
    frame["name"] = [getattr(row, view) for row in rows]
    return frame


@hookimpl
def register_datasets(register):
    """Register ``pairs`` with cvbench."""
    register("pairs", Pairs, summary="bring your own city: a CSV of ground/aerial image pairs (pairs.csv)")
