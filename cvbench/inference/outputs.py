"""Writing a :class:`~cvbench.inference.localize.Localization`: CSV, GeoJSON or JSON, each file written atomically.

- ``csv``: one row per query and rank, the columns of ``Localization.table``.
- ``geojson``: a FeatureCollection with one Point feature per query and top
  tile, at the tile's ``[lon, lat]`` (RFC 7946). Tiles in a projected frame
  (``x``/``y`` metres) are written at ``[x, y]``, and the collection says so
  in its ``"cvbench:coordinates": "xy metres"`` member (GIS tools then need the frame's CRS).
- ``json``: ``{"run", "coordinates", "summary", "queries": [{"query", "top": [...]}]}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..atomic import atomic_path, write_text
from .localize import Localization
from .places import COORDINATES

FORMATS = ("csv", "geojson", "json")


def _plain(value: Any) -> Any:
    """A cell as JSON has it: numpy scalars as Python ones, NaN / NA as null."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return None if value is pd.NA else value


def _records(localization: Localization) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in localization.table.to_dict("records")]


def write_csv(localization: Localization, path: Path) -> Path:
    """One row per query and rank."""
    with atomic_path(path) as tmp:
        localization.table.to_csv(tmp, index=False)
    return path


def to_geojson(localization: Localization) -> dict[str, Any]:
    """A FeatureCollection: one Point per query and top tile, its other columns as properties."""
    first, second = COORDINATES[localization.coordinates]
    features = []
    for row in _records(localization):
        point = [row[second], row[first]] if localization.coordinates == "latlon" else [row[first], row[second]]
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": point},
                         "properties": {key: value for key, value in row.items() if key not in (first, second)}})
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if localization.coordinates == "xy":
        collection["cvbench:coordinates"] = "xy metres"
    return collection


def to_json(localization: Localization) -> dict[str, Any]:
    """Per query, its top tiles (and truth, where known), with the run and the summary."""
    queries: dict[str, dict[str, Any]] = {}
    for row in _records(localization):
        entry = queries.setdefault(row.pop("query"), {"top": []})
        for key in [key for key in row if key.startswith("true_")]:
            entry[key] = row.pop(key)
        entry["top"].append(row)
    return {"run": localization.run, "coordinates": localization.coordinates, "summary": localization.summary(),
            "unreadable": localization.skipped,
            "queries": [{"query": name, **entry} for name, entry in queries.items()]}


WRITERS: dict[str, Callable[[Localization, Path], Path]] = {
    "csv": write_csv,
    "geojson": lambda localization, path: _write(path, to_geojson(localization)),
    "json": lambda localization, path: _write(path, to_json(localization)),
}


def _write(path: Path, data: dict[str, Any]) -> Path:
    write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")
    return path


def write_localization(localization: Localization, path: str | Path, format: str = "csv") -> Path:
    """Write ``localization`` to ``path`` in ``format`` (one of :data:`FORMATS`)."""
    if format not in WRITERS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return WRITERS[format](localization, Path(path))
