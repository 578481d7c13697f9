"""Localisation with a trained run: each query's top-k tiles from a saved index, and its error where the truth is known.

A query is placed at the centre of its top-1 tile, as the evaluation's
``localisation`` metric places it (:mod:`cvbench.evaluation.localisation`,
whose distances are used here: haversine metres for ``lat``/``lon``, planar
metres for ``x``/``y``). The order of tiles with exactly equal scores is
faiss's. Query images that cannot be read are reported one by one (a
:class:`cvbench.data.problems.DatasetWarning` naming the file) and left out.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from rich.progress import Progress

from ..data.imagecheck import check_files
from ..data.problems import DatasetWarning
from ..errors import CvbenchError, DatasetNotFoundError
from ..evaluation.localisation import distances_m
from .loaded_run import Images, LoadedRun
from .places import COORDINATES, Places, read_places, resolve
from .tile_index import TileIndex
from .tiles import IMAGE_SUFFIXES


@dataclass
class Localization:
    """One row per query and rank (``table``), the coordinate columns' kind, and the queries left out.

    ``table`` columns: ``query``, ``rank`` (1 = best), ``tile``, ``score``
    (cosine similarity), the tile's ``lat``/``lon`` (or ``x``/``y``), and
    where the query's truth is known ``true_lat``/``true_lon`` (or
    ``true_x``/``true_y``), ``error_m`` (this tile's distance from the
    truth) and, where the true tile is known, ``is_true_tile``.
    """

    table: pd.DataFrame
    coordinates: str
    run: str
    skipped: list[str] = field(default_factory=list)

    def top1(self) -> pd.DataFrame:
        """The best tile of each query."""
        return self.table[self.table["rank"] == 1].reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """Counts, and with the truth the top-1 error in metres and how often the true tile ranks first."""
        best = self.top1()
        result: dict[str, Any] = {"run": self.run, "queries": len(best), "unreadable": len(self.skipped)}
        if "error_m" in best:
            known = best["error_m"].dropna()
            result["with_truth"] = len(known)
            if len(known):
                result["error_median_m"] = float(known.median())
                result["error_mean_m"] = float(known.mean())
        if "is_true_tile" in best:
            result["true_tile_at_1"] = int(best["is_true_tile"].fillna(False).astype(bool).sum())
            result["true_tile_in_top_k"] = int(self.table.groupby("query", sort=False)["is_true_tile"]
                                               .apply(lambda hits: hits.fillna(False).astype(bool).any()).sum())
        return result


def query_files(folder: str | Path) -> list[Path]:
    """The image files of a query folder, sorted by name (an error naming the folder when it has none)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DatasetNotFoundError(f"--queries {folder} {what}; expected a folder of query images "
                                   f"({', '.join(IMAGE_SUFFIXES)})")
    files = sorted(path.resolve() for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetNotFoundError(f"--queries {folder} holds no images; expected {', '.join(IMAGE_SUFFIXES)} files")
    return files


def readable(paths: Sequence[Path], progress: Progress | None = None) -> tuple[list[Path], list[str]]:
    """The files that decode, and a warning for each one that does not (named, then left out)."""
    problems = check_files([Path(path) for path in paths], progress=progress, description="check queries")
    kept, skipped = [], []
    for path in paths:
        problem = problems[Path(path)]
        if problem is not None and problem.fatal:
            warnings.warn(f"query {path} left out: {problem.message}", DatasetWarning, stacklevel=2)
            skipped.append(str(path))
        else:
            kept.append(Path(path))
    return kept, skipped


def read_truth(csv: str | Path) -> Places:
    """True query positions (``path,lat,lon`` or ``path,x,y``, optionally ``tile``), paths relative to the CSV."""
    return read_places(csv, "--truth CSV", check_files=False)


def localize(run: LoadedRun, index: TileIndex, queries: str | Path | Images, top_k: int = 5,
             fov: float | None = None, truth: str | Path | Places | None = None,
             progress: Progress | None = None, batch_size: int | None = None) -> Localization:
    """The ``top_k`` tiles of ``index`` for each query image, best first, with the error where ``truth`` knows it.

    ``queries`` is a folder of images, a list of paths, or images in memory
    (anything :meth:`LoadedRun.embed` takes; they are named 0, 1, ...).
    ``fov`` cuts full panoramas to that many degrees, as the run's ``--fov``
    does (default: the run's own). ``truth`` is a CSV (:func:`read_truth`)
    matched to the queries by path, or else by file name. The index must
    hold this run's embeddings (:meth:`TileIndex.check_run`).
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise CvbenchError(f"--top-k must be a positive whole number, got {top_k!r}")
    index.check_run(run)
    skipped: list[str] = []
    if isinstance(queries, (str, Path)) or (isinstance(queries, (list, tuple)) and queries
                                           and all(isinstance(q, (str, Path)) for q in queries)):
        files = query_files(queries) if isinstance(queries, (str, Path)) else [Path(q).resolve() for q in queries]
        files, skipped = readable(files, progress)
        if not files:
            raise CvbenchError(f"no query image of {queries if isinstance(queries, (str, Path)) else 'the list'} "
                               "could be read; see the warnings above")
        names, images = [str(path) for path in files], [str(path) for path in files]
    else:
        images = queries
        names = [str(i) for i in range(len(queries))]
    embeddings = run.embed(images, view="ground", fov=fov, batch_size=batch_size, progress=progress)
    k = min(int(top_k), len(index))
    scores, found = index.index.search(np.ascontiguousarray(embeddings, np.float32), k) if len(names) else (
        np.zeros((0, k), np.float32), np.zeros((0, k), np.int64))
    table = pd.DataFrame({"query": np.repeat(names, k), "rank": np.tile(np.arange(1, k + 1), len(names)),
                          "tile": np.asarray(index.paths, dtype=object)[found.ravel()] if len(names) else [],
                          "score": scores.ravel()})
    for column, values in zip(COORDINATES[index.positions.kind], index.positions.values[found.ravel()].T):
        table[column] = values
    if truth is not None:
        table = _with_truth(table, found.ravel(), index, truth if isinstance(truth, Places) else read_truth(truth))
    return Localization(table, index.positions.kind, run.name, skipped)


def _with_truth(table: pd.DataFrame, tiles: np.ndarray, index: TileIndex, truth: Places) -> pd.DataFrame:
    """``table`` with the true position, the error in metres and whether the tile is the true one, per row."""
    if truth.positions.kind != index.positions.kind:
        raise CvbenchError(f"--truth {truth.source} gives {'/'.join(COORDINATES[truth.positions.kind])} but the "
                           f"index's tiles carry {'/'.join(COORDINATES[index.positions.kind])}; give both in one frame")
    row_of = {str(path): row for row, path in enumerate(truth.paths)}
    names = [path.name for path in truth.paths]
    once = {name for name, count in Counter(names).items() if count == 1}
    by_name = {name: row for row, name in enumerate(names) if name in once}
    rows = np.array([row_of.get(query, by_name.get(Path(query).name, -1)) for query in table["query"]])
    known = rows >= 0
    columns = COORDINATES[truth.positions.kind]
    for column, values in zip(columns, truth.positions.values.T):
        table[f"true_{column}"] = np.where(known, values[np.maximum(rows, 0)], np.nan)
    error = np.full(len(table), np.nan)
    error[known] = distances_m(truth.positions, rows[known], index.positions, tiles[known])
    table["error_m"] = error
    if "tile" in truth.extra:
        true_tiles = [str(resolve(truth.source.parent, text)) if text else "" for text in truth.extra["tile"]]
        table["is_true_tile"] = pd.array([true_tiles[row] == tile if row >= 0 and true_tiles[row] else None
                                          for row, tile in zip(rows, table["tile"])], dtype="boolean")
    return table
