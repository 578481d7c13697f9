"""Where the tiles of an index and their coordinates come from: a CSV, or VIGOR-style file names.

``--tiles`` is either a CSV file (:mod:`.places`: ``path,lat,lon`` or
``path,x,y``), a folder holding ``tiles.csv``, or a folder of tiles named
as VIGOR names them, ``satellite_<lat>_<lon>.png``. :class:`TileSource`
says which was used, so the command can tell the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError, DatasetNotFoundError
from ..evaluation.localisation import Positions
from .places import read_places

TILES_CSV = "tiles.csv"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIGOR_NAME = re.compile(r"^satellite_([-+]?\d+(?:\.\d+)?)_([-+]?\d+(?:\.\d+)?)$")


@dataclass
class TileSource:
    """The tiles (absolute paths, in index order), their positions, and how the coordinates were found."""

    paths: list[Path]
    positions: Positions
    described: str

    def __len__(self) -> int:
        return len(self.paths)


def read_tiles(where: str | Path) -> TileSource:
    """The tiles of ``--tiles``: a CSV file, a folder with ``tiles.csv``, or a folder of VIGOR-named tiles."""
    where = Path(where).expanduser()
    if where.is_file():
        return _from_csv(where)
    if not where.is_dir():
        raise DatasetNotFoundError(f"--tiles {where} does not exist; expected a folder of tiles or a CSV file "
                                   "(path,lat,lon or path,x,y)")
    if (where / TILES_CSV).is_file():
        return _from_csv(where / TILES_CSV)
    return _from_names(where)


def _from_csv(csv: Path) -> TileSource:
    places = read_places(csv, "tile CSV")
    return TileSource(places.paths, places.positions, f"coordinates from the CSV file {csv}")


def _from_names(folder: Path) -> TileSource:
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetNotFoundError(f"--tiles {folder} holds no {TILES_CSV} and no tiles ({', '.join(IMAGE_SUFFIXES)}); "
                                   "expected tiles named satellite_<lat>_<lon>.png or a CSV path,lat,lon")
    values = []
    for path in files:
        found = VIGOR_NAME.match(path.stem)
        lat, lon = (float(found.group(1)), float(found.group(2))) if found else (np.nan, np.nan)
        if not found or abs(lat) > 90 or abs(lon) > 180:
            raise DatasetFormatError(f"tile {path} is not named satellite_<lat>_<lon>{path.suffix} with lat in "
                                     f"[-90, 90] and lon in [-180, 180]; name every tile so, or give --tiles a CSV "
                                     f"path,lat,lon (or put {TILES_CSV} in the folder)")
        values.append((lat, lon))
    return TileSource([path.resolve() for path in files], Positions("latlon", np.asarray(values, np.float64)),
                      f"coordinates from VIGOR-style file names (satellite_<lat>_<lon>) in {folder}")
