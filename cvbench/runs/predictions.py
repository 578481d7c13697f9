"""``predictions_<split>.csv`` of ``cvbench eval --predictions K``: each query, its true tile and its top K tiles.

Every item is named, not only indexed, so the file can be read without the
dataset's loader: an image read from a file is its path relative to the data
root (``ground/0001.jpg``; a path outside the root stays as the dataset lists
it), an image held in memory (the synthetic world) the name ``cvbench data
synth`` exports it under (``val/ground/000012.png``). Where the items carry
coordinates, each query's true position and each listed tile's position are
written (``lat``/``lon`` degrees or ``x``/``y`` metres, as the dataset has
them), and ``error_m`` is the distance from the query to its top-1 tile,
measured as the ``localisation`` metric measures it (haversine or planar
metres). Columns, in order::

    query, query_index, positive, positive_index, [query_lat, query_lon | query_x, query_y],
    top1, top1_index, score1, [top1_lat, top1_lon | top1_x, top1_y], ... topK ..., [error_m]

The top K come from faiss (:func:`cvbench.evaluation.retrieval.topk`), best
first: a tie between references is listed in faiss's order, while the run's
metrics count ties under its ``--ties`` convention.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..data import CrossViewPairs, ImageList
from ..data.imagecheck import image_paths
from ..evaluation.evaluate import Evaluation
from ..evaluation.localisation import Positions, distances_m
from ..evaluation.retrieval import topk

LOCATIONS = (("latlon", ("lat", "lon")), ("xy", ("x", "y")))
"""The coordinate columns an item's metadata may hold, in the order they are looked for (as the metre metrics do)."""

SUBSET = "val"
"""The subset evaluation reads; an in-memory image is named under it, as ``cvbench data synth`` exports it."""


def image_names(images: ImageList, view: str, root: str | Path | None, subset: str = SUBSET) -> np.ndarray:
    """A name for each image of a list: its file relative to ``root``, or ``<subset>/<view>/<index:06d>.png``.

    ``root`` is the data root the dataset was opened from (a file, such as
    a ``pairs`` CSV, stands for its folder); a file outside it, or a list
    read without one, keeps the path the dataset gave. Images held in
    memory get the names :func:`cvbench.data.preview.export_pairs` writes
    them under.
    """
    paths = image_paths(images)
    if paths is None:
        return np.array([f"{subset}/{view}/{index:06d}.png" for index in range(len(images))], dtype=object)
    base = None
    if root is not None:
        base = Path(os.path.abspath(Path(root).expanduser()))
        base = base.parent if base.is_file() else base
    return np.array([_relative(path, base) for path in paths], dtype=object)


def _relative(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return Path(os.path.abspath(path)).relative_to(base).as_posix()
        except ValueError:  # outside the root (the pairs dataset's allow_outside_root)
            pass
    return Path(path).as_posix()


def coordinates(meta: pd.DataFrame) -> tuple[tuple[str, str], Positions] | None:
    """The coordinate columns of per-item metadata and their values (an unknown cell is NaN); None without any."""
    for kind, columns in LOCATIONS:
        if set(columns) <= set(meta.columns):
            values = meta[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            return columns, Positions(kind, values)
    return None


def predictions_frame(pairs: CrossViewPairs, queries: np.ndarray, scores: np.ndarray, indices: np.ndarray,
                      root: str | Path | None) -> pd.DataFrame:
    """The table of the module docstring for ``pairs``' queries ``queries`` and their top references.

    ``scores`` and ``indices`` are ``(len(queries), K)``, best first;
    ``root`` is the data root the dataset was read from (for the names).
    """
    queries = np.asarray(queries, dtype=np.int64)
    query_names = image_names(pairs.queries, pairs.query_view, root)
    tile_names = image_names(pairs.gallery, pairs.gallery_view, root)
    query_where, tile_where = coordinates(pairs.query_meta), coordinates(pairs.gallery_meta)
    positives = pairs.positives[queries]
    columns: dict[str, np.ndarray] = {"query": query_names[queries], "query_index": queries,
                                      "positive": tile_names[positives], "positive_index": positives}
    if query_where is not None:
        for name, values in zip(query_where[0], query_where[1].values[queries].T):
            columns[f"query_{name}"] = values
    for rank in range(indices.shape[1]):
        top = indices[:, rank]
        columns.update({f"top{rank + 1}": tile_names[top], f"top{rank + 1}_index": top,
                        f"score{rank + 1}": scores[:, rank]})
        if tile_where is not None:
            for name, values in zip(tile_where[0], tile_where[1].values[top].T):
                columns[f"top{rank + 1}_{name}"] = values
    if query_where is not None and tile_where is not None and query_where[1].kind == tile_where[1].kind \
            and indices.shape[1]:
        columns["error_m"] = distances_m(query_where[1], queries, tile_where[1], indices[:, 0])
    return pd.DataFrame(columns)


def write_predictions(path: Path, result: Evaluation, pairs: CrossViewPairs, queries: np.ndarray, k: int,
                      root: str | Path | None) -> Path:
    """Each evaluated query's true tile and its top-k references, named and placed, written atomically."""
    scores, indices = topk(result.query, result.reference, min(k, len(result.reference)))
    frame = predictions_frame(pairs, queries, scores, indices, root)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path
