"""The ``vigor`` dataset plugin: VIGOR read from the folders its authors distribute.

VIGOR (Zhu, Yang and Chen, "VIGOR: Cross-View Image Geo-localization beyond
One-to-one Retrieval", CVPR 2021) pairs street-view panoramas of Chicago,
New York, San Francisco and Seattle with 640 px satellite tiles. A panorama
lies anywhere on its positive tile, not at the centre, and is also covered by
three neighbouring "semi-positive" tiles. The two protocols and the order of
cities inside them follow the authors' data loader, so gallery indices match
theirs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvbench.contract import Dataset
from cvbench.contract.hookspecs import hookimpl
from cvbench.data import CrossViewPairs, FileImages
from cvbench.data.entries import first_occurrences, require_entries
from cvbench.data.layout import Listings, expand_root, path_is, require_layout, text_lines
from cvbench.data.problems import Problem, report_problem, report_skipped
from cvbench.errors import DatasetNotFoundError, SpecError

CITIES = ("Chicago", "NewYork", "SanFrancisco", "Seattle")
SAME_AREA_CITIES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
# split -> subset -> (cities in the authors' order, label file stem)
PROTOCOLS = {
    "cross_area": {"train": (("NewYork", "Seattle"), "pano_label_balanced"),
                   "val": (("SanFrancisco", "Chicago"), "pano_label_balanced")},
    "same_area": {"train": (SAME_AREA_CITIES, "same_area_balanced_train"),
                  "val": (SAME_AREA_CITIES, "same_area_balanced_test")},
    # thesis section 4.4 (table 4.6): cross-area with the two sides swapped
    "cross_area_swapped": {"train": (("SanFrancisco", "Chicago"), "pano_label_balanced"),
                           "val": (("NewYork", "Seattle"), "pano_label_balanced")},
}
LABEL_SETS = ("original", "corrected")
SATELLITE_LIST = "satellite_list"
LINE_FIELDS = 13  # panorama, then 4 x (satellite name, row offset, column offset)
LABEL_LINE = "panorama name, then 4 x satellite name, row offset, column offset"
SEMI_POSITIVES = 3

PANORAMA_NAME = re.compile(r",(-?[0-9.]+),(-?[0-9.]+),\.jpg$")
SATELLITE_NAME = re.compile(r"^satellite_(-?[0-9.]+)_(-?[0-9.]+)\.png$")

LAYOUT = """\
ROOT/
├── Chicago/
│   ├── panorama/   <panoid>,<lat>,<lng>,.jpg
│   │               e.g. -0G5ZnBjjr8Gf,41.885081,-87.666454,.jpg
│   └── satellite/  satellite_<lat>_<lng>.png
├── NewYork/        (panorama/ and satellite/ as in Chicago)
├── SanFrancisco/   (panorama/ and satellite/ as in Chicago)
├── Seattle/        (panorama/ and satellite/ as in Chicago)
├── splits/
│   └── <city>/     one folder per city
│       ├── satellite_list.txt           a satellite file name a line
│       ├── same_area_balanced_train.txt panorama, then 4 x (satellite,
│       ├── same_area_balanced_test.txt    row offset, column offset)
│       └── pano_label_balanced.txt
└── splits__corrected/  only for labels=corrected (or renamed to splits/)
    └── <city>/
        ├── satellite_list.txt
        ├── same_area_balanced_train__corrected.txt
        ├── same_area_balanced_test__corrected.txt
        └── pano_label_balanced__corrected.txt
"""

SOURCE = """\
Download VIGOR from https://github.com/Jeff-Zilence/VIGOR
(the authors share it on request), unpack it so that ROOT holds
the four city folders and splits/, then pass --data-root ROOT.
Corrected labels (labels=corrected): VIGOR_corrected_labels of
https://github.com/tudelft-iv/SliceMatch.
"""


@dataclass
class Gallery:
    """The satellite tiles of some cities, as listed in their satellite_list.txt and found on disk."""

    images: FileImages
    meta: pd.DataFrame
    index: dict[str, int]  # tile name -> gallery index, for the tiles on disk
    missing: dict[str, Path] = field(default_factory=dict)  # listed tiles whose file is missing
    lists: list[Path] = field(default_factory=list)  # the satellite_list.txt files read


class Vigor(Dataset):
    """VIGOR's ground panoramas (queries) against its satellite tiles (references).

    Splits: ``cross_area`` (default; train on New York + Seattle, evaluate on
    San Francisco + Chicago, each gallery being every listed tile of its two
    cities), ``cross_area_swapped`` (the other way round, the thesis' section
    4.4) and ``same_area`` (train and test panoramas from all four cities,
    one shared gallery of every tile). Positives are each query's first tile,
    semi-positives the other three. ``ground_meta`` has ``city``, ``lat``,
    ``lon``, ``name`` and ``offset_row_px`` / ``offset_col_px`` (the panorama's
    pixel offset from the positive tile's centre, in the 640 px tile);
    ``aerial_meta`` has ``city``, ``lat``, ``lon``, ``name``.

    Option ``labels``: "original" (default) or "corrected" (the SliceMatch
    corrected label files, looked up in ``splits__corrected/`` then ``splits/``).
    """

    def __init__(self, root: Path | str | None = None, labels: str = "original", **unknown: Any) -> None:
        if unknown:
            raise SpecError(f"dataset 'vigor' has no option {', '.join(map(repr, unknown))}; its options are: labels")
        self.labels = parse_labels(labels)
        self.root = require_layout("VIGOR", root, self._required(root), LAYOUT, SOURCE)
        self._listings = Listings()
        self._galleries: dict[tuple[str, ...], Gallery] = {}

    def splits(self) -> list[str]:
        """``["cross_area", "same_area", "cross_area_swapped"]``: the default first."""
        return list(PROTOCOLS)

    @staticmethod
    def image_sizes() -> dict[str, tuple[int, int]]:
        """The thesis' section 4.2 input sizes for VIGOR: 224x448 panoramas, 224x224 tiles."""
        return {"ground": (224, 448), "aerial": (224, 224)}

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` or ``val`` subset of ``split``, parsed from the label files."""
        cities, stem = PROTOCOLS[split][subset]
        return self._read_pairs(split, subset, cities, stem)

    def _required(self, root: Path | str | None) -> list[str]:
        base = expand_root(root, "VIGOR") if root is not None else Path()
        required = [f"{city}/{folder}" for city in CITIES for folder in ("panorama", "satellite")]
        for city in CITIES:
            places = self._candidates(city, SATELLITE_LIST)
            required.append(next((p for p in places if path_is(Path.is_file, base / p)), places[0]))
        return required

    def _candidates(self, city: str, stem: str) -> list[str]:
        """Where a split file may be, relative to the root, in the order it is looked for."""
        if self.labels == "original":
            return [f"splits/{city}/{stem}.txt"]
        name = f"{stem}.txt" if stem == SATELLITE_LIST else f"{stem}__corrected.txt"
        return [f"splits__corrected/{city}/{name}", f"splits/{city}/{name}"]

    def _split_file(self, city: str, stem: str) -> Path:
        places = [self.root / p for p in self._candidates(city, stem)]
        for path in places:
            if path.is_file():
                return path
        raise DatasetNotFoundError(f"a VIGOR split file (labels={self.labels}) is missing; looked for "
                                   f"{' and '.join(map(str, places))}.\n{SOURCE.rstrip()}")


    def _gallery(self, cities: tuple[str, ...]) -> Gallery:
        """The tiles of ``cities`` in list order, built once per city set (so same_area's is shared)."""
        if cities in self._galleries:
            return self._galleries[cities]
        paths, rows, index, missing, problems, lists = [], [], {}, {}, [], []
        for city in cities:
            list_path = self._split_file(city, SATELLITE_LIST)
            lists.append(list_path)
            folder = self.root / city / "satellite"
            on_disk = self._listings.names(folder)
            listed = list(text_lines(list_path))
            require_entries(list_path, len(listed), "one satellite tile file name a line")
            for number, name in first_occurrences(list_path, listed, key=_text, line=_number, what="tile lines"):
                if name not in on_disk:
                    missing[name] = folder / name
                    problems.append(Problem(str(list_path), f"missing image {folder / name}", number))
                    continue
                index[name] = len(paths)
                paths.append(folder / name)
                rows.append((city, *satellite_location(name), name))
        report_skipped(f"VIGOR satellite tiles of {', '.join(cities)} whose image files are missing "
                       "(left out of the gallery)", problems)
        meta = pd.DataFrame(rows, columns=["city", "lat", "lon", "name"])
        gallery = Gallery(FileImages(paths), meta, index, missing, lists)
        self._galleries[cities] = gallery
        return gallery

    def _read_pairs(self, split: str, subset: str, cities: tuple[str, ...], stem: str) -> CrossViewPairs:
        """The queries of the ``stem`` label files of ``cities``, against the tiles of those cities."""
        gallery = self._gallery(cities)
        paths, rows, positives, semis, skipped, label_paths = [], [], [], [], [], []
        every_file_lists = True
        for city in cities:
            label_path = self._split_file(city, stem)
            label_paths.append(label_path)
            folder = self.root / city / "panorama"
            on_disk = self._listings.names(folder)
            listed = list(text_lines(label_path))
            every_file_lists &= require_entries(label_path, len(listed), f"one line per panorama ({LABEL_LINE})")
            parsed = [(number, fields) for number, line in listed
                      if (fields := parse_line(label_path, number, line, gallery, cities)) is not None]
            for number, (name, tiles, offsets) in first_occurrences(label_path, parsed, key=_panorama, line=_number,
                                                                    what="panorama lines"):
                lost = _missing_image(name, on_disk, folder, tiles[0], gallery)
                if lost:
                    skipped.append(Problem(str(label_path), lost, number))
                    continue
                kept = [gallery.index[t] for t in tiles[1:] if t in gallery.index]
                paths.append(folder / name)
                rows.append((city, *panorama_location(name), name, offsets[0], offsets[1]))
                positives.append(gallery.index[tiles[0]])
                semis.append(kept + [-1] * (SEMI_POSITIVES - len(kept)))
        report_skipped(f"VIGOR {split} {subset} pairs whose image files are missing", skipped)
        if every_file_lists and not paths:
            report_problem(" and ".join(map(str, label_paths)), f"no usable panorama for VIGOR {split} {subset}: "
                           "every line was left out (expected panoramas whose image file and positive tile exist)")
        columns = ["city", "lat", "lon", "name", "offset_row_px", "offset_col_px"]
        return CrossViewPairs(
            ground=FileImages(paths), aerial=gallery.images, positives=np.asarray(positives, dtype=np.int64),
            semi_positives=np.asarray(semis, dtype=np.int64).reshape(-1, SEMI_POSITIVES),
            ground_meta=pd.DataFrame(rows, columns=columns), aerial_meta=gallery.meta)


def _text(entry: tuple[int, str]) -> str:
    return entry[1]


def _number(entry: tuple[int, Any]) -> int:
    return entry[0]


def _panorama(entry: tuple[int, tuple[str, list[str], list[float]]]) -> str:
    """The panorama a parsed label line is about: listed twice, it would be two queries."""
    return f"panorama {entry[1][0]}"


def _missing_image(name: str, on_disk: set[str], folder: Path, positive: str, gallery: Gallery) -> str | None:
    """Why a query must be skipped (its panorama or positive tile file is missing), else None."""
    if name not in on_disk:
        return f"missing image {folder / name} (the panorama)"
    if positive in gallery.missing:
        return f"missing image {gallery.missing[positive]} (the positive tile of {name})"
    return None


def parse_line(path: Path, number: int, line: str, gallery: Gallery,
               cities: tuple[str, ...]) -> tuple[str, list[str], list[float]] | None:
    """(panorama name, its 4 tile names, its 8 offsets) of a label line; None after reporting a bad line."""
    fields = line.split()
    if len(fields) != LINE_FIELDS:
        report_problem(path, f"expected {LINE_FIELDS} space-separated fields (panorama name, then 4 x satellite "
                             f"name, row offset, column offset), got {len(fields)}", line=number)
        return None
    tiles = fields[1::3]
    values = [f for i, f in enumerate(fields) if i % 3 != 1 and i]
    bad = next((v for v in values if not _is_number(v)), None)
    if bad is not None:
        report_problem(path, f"offset {bad!r} is not a finite number (expected pixel offsets after each satellite "
                             "name)", line=number)
        return None
    offsets = [float(v) for v in values]
    unknown = [t for t in tiles if t not in gallery.index and t not in gallery.missing]
    if unknown:
        report_problem(path, f"satellite {unknown[0]} is not listed in {' or '.join(map(str, gallery.lists))} "
                             f"(the tiles of {', '.join(cities)})", line=number)
        return None
    return fields[0], tiles, offsets


def parse_labels(value: Any) -> str:
    """The ``labels`` option, checked: "original" or "corrected"."""
    labels = str(value).strip().lower()
    if labels not in LABEL_SETS:
        raise SpecError(f"vigor option labels must be one of {', '.join(LABEL_SETS)}, got {value!r}")
    return labels


def panorama_location(name: str) -> tuple[float, float]:
    """(lat, lon) from a panorama name ``panoid,lat,lng,.jpg``; NaN when it does not parse."""
    return _location(PANORAMA_NAME.search(name))


def satellite_location(name: str) -> tuple[float, float]:
    """(lat, lon) from a tile name ``satellite_<lat>_<lng>.png``; NaN when it does not parse."""
    return _location(SATELLITE_NAME.match(name))


def _location(match: re.Match | None) -> tuple[float, float]:
    if match is None or not all(_is_number(g) for g in match.groups()):
        return math.nan, math.nan
    return float(match.group(1)), float(match.group(2))


def _is_number(text: str) -> bool:
    """Whether ``text`` is a finite number (``nan``, ``inf`` and ``1e999`` are not)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


@hookimpl
def register_datasets(register):
    """Register ``vigor`` with cvbench."""
    register("vigor", Vigor, summary="VIGOR from disk: panoramas vs satellite tiles of 4 US cities, "
                                     "cross_area / same_area, semi-positives")
