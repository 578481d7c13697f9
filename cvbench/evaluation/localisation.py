"""Localisation in metres: where retrieval places each query, and how far that is from where it was taken.

A query is placed at the centre of its top-1 reference (VIGOR's and CVACT's
metre-level protocol, before any offset regression); the drone benchmarks
also score the top K (GTA-UAV's SDM@K and Dis@K). Distances are great-circle
(haversine) metres when the items carry ``lat``/``lon`` degrees, and planar
metres when they carry ``x``/``y`` in a projected frame (CVACT's UTM, the
synthetic world's city frame).

The top references come from :func:`cvbench.evaluation.topk.exact_top`, as
exact tie groups, and a tie counts under the run's ``ties`` convention:
``"random"`` takes the expectation over a random order of the tied
references (a collapsed model is placed at a random tile), ``"optimistic"``
orders them nearest first (ties go to the truth, as the reference scripts'
R@k does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..contract.metric import TIES
from .inputs import ArrayLike
from .topk import TopGroups, exact_top

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), the sphere the haversine distance is measured on."""

DEFAULT_THRESHOLDS_M = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)
SDM_SCALE = 0.001
"""SDM@K's decay per metre, GTA-UAV's s."""


@dataclass(frozen=True)
class Positions:
    """Item positions: ``kind`` "latlon" (degrees, ``values[:, 0]`` latitude) or "xy" (metres, east and north)."""

    kind: str
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


def positions(meta: pd.DataFrame, what: str = "items") -> Positions | None:
    """The positions in per-item metadata: ``lat``/``lon`` first, else ``x``/``y``; None where there are neither.

    Raises ValueError naming ``what`` and the column when a value is missing
    or not finite, or a latitude or longitude is out of range.
    """
    for kind, columns in (("latlon", ("lat", "lon")), ("xy", ("x", "y"))):
        if set(columns) <= set(meta.columns):
            values = meta[list(columns)].to_numpy(dtype=np.float64)
            for column, part in zip(columns, values.T):
                bad = np.flatnonzero(~np.isfinite(part))
                if bad.size:
                    raise ValueError(f"{what}: column {column!r} has a missing or non-finite value at row "
                                     f"{int(bad[0])}")
            if kind == "latlon" and len(values) and (np.abs(values[:, 0]).max() > 90
                                                     or np.abs(values[:, 1]).max() > 180):
                raise ValueError(f"{what}: lat must lie in [-90, 90] and lon in [-180, 180] degrees")
            return Positions(kind, values)
    return None


def haversine_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres between (lat, lon) degree rows of ``a`` and ``b`` (broadcast)."""
    lat1, lon1 = np.radians(a[..., 0]), np.radians(a[..., 1])
    lat2, lon2 = np.radians(b[..., 0]), np.radians(b[..., 1])
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def distances_m(a: Positions, a_index: np.ndarray, b: Positions, b_index: np.ndarray) -> np.ndarray:
    """Distance in metres from ``a[a_index[i]]`` to ``b[b_index[i]]`` for each i."""
    if a.kind != b.kind:
        raise ValueError(f"queries carry {a.kind} positions but references carry {b.kind}; they cannot be compared")
    left, right = a.values[a_index], b.values[b_index]
    if a.kind == "latlon":
        return haversine_m(left, right)
    return np.hypot(left[:, 0] - right[:, 0], left[:, 1] - right[:, 1])


def _check(ties: str, query_positions: Positions, reference_positions: Positions, query: ArrayLike,
           reference: ArrayLike) -> None:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    for name, where, items in (("query", query_positions, query), ("reference", reference_positions, reference)):
        if len(where) != len(items):
            raise ValueError(f"{len(where)} {name} positions for {len(items)} {name} embeddings")


def _placed(top: TopGroups, distance: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray]:
    """Per member of ``top``: (its 0-based position, or None under random ties, and its weight 1/size or 1).

    Under "optimistic" a group's members take its positions nearest first;
    under "random" each member is at each of its group's positions with
    probability 1/size.
    """
    if ties == "random":
        return top.start.astype(np.float64), 1.0 / top.size
    order = np.lexsort((distance, top.start, top.query))  # by query, group, then distance
    position = np.empty(len(order), dtype=np.int64)
    ranked_start = top.start[order]
    first_of_group = np.r_[True, (np.diff(ranked_start) != 0) | (np.diff(top.query[order]) != 0)]
    group_id = np.cumsum(first_of_group) - 1
    offset = np.arange(len(order)) - np.flatnonzero(first_of_group)[group_id]
    position[order] = ranked_start + offset
    return position.astype(np.float64), np.ones(len(order))


def _weights(top: TopGroups, distance: np.ndarray, ties: str, k: int, weight_of: callable) -> np.ndarray:
    """Per member, its expected total of ``weight_of(position)`` over the first ``k`` positions."""
    if ties == "optimistic":
        position, _ = _placed(top, distance, ties)
        inside = position < k
        return np.where(inside, weight_of(np.minimum(position, k - 1)), 0.0)
    total = np.zeros(len(top.start))
    for offset in range(int(top.size.max()) if len(top.size) else 0):  # each position of each member's group
        position = top.start + offset
        inside = (offset < top.size) & (position < k)
        total += np.where(inside, weight_of(np.minimum(position, k - 1)), 0.0)
    return total / top.size


def localisation_report(query: ArrayLike, reference: ArrayLike, query_positions: Positions,
                        reference_positions: Positions, thresholds_m: Sequence[float] = DEFAULT_THRESHOLDS_M,
                        ties: str = "random", chunk_size: int | None = None) -> dict[str, float]:
    """``error_median_m``, ``error_mean_m`` of the top-1 centre, and ``acc@Xm`` (percent placed within X metres).

    Under ``ties="random"`` a query's error is the mean over its tied top-1
    references and its share at X the fraction of them within X (its
    probability under a random tie-break); under ``"optimistic"`` the
    nearest tied reference counts. The median and mean are over queries.
    """
    thresholds = [float(x) for x in thresholds_m]
    if not thresholds or any(not math.isfinite(x) or x <= 0 for x in thresholds):
        raise ValueError(f"thresholds must be positive distances in metres, got {thresholds_m!r}")
    _check(ties, query_positions, reference_positions, query, reference)
    top = exact_top(query, reference, 1, chunk_size)
    distance = distances_m(query_positions, top.query, reference_positions, top.reference)
    weight = _weights(top, distance, ties, 1, lambda position: np.ones_like(position, dtype=np.float64))
    count = top.num_queries
    error = np.bincount(top.query, weight * distance, minlength=count)
    result = {"error_median_m": float(np.median(error)), "error_mean_m": float(np.mean(error))}
    for x in thresholds:
        share = np.bincount(top.query, weight * (distance <= x), minlength=count)
        result[f"acc@{x:g}m"] = float(100.0 * share.mean())
    return result


def top_k_distances(query: ArrayLike, reference: ArrayLike, query_positions: Positions,
                    reference_positions: Positions, ks: Sequence[int] = (1, 3, 5), ties: str = "random",
                    scale: float = SDM_SCALE, chunk_size: int | None = None) -> dict[str, float]:
    """GTA-UAV's ``Dis@K`` (mean distance in metres of the top K) and ``SDM@K`` for each K of ``ks``.

    SDM@K = sum_{i=1}^{K} (K - i + 1) exp(-scale d_i) / sum_{i=1}^{K} (K - i + 1),
    d_i the distance of the i-th reference, so the best ranks weigh most
    (GTA-UAV, Ji et al. 2025). Both are means over queries, in expectation
    over tied references under ``ties="random"``.
    """
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive whole numbers, got {ks!r}")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number (per metre), got {scale!r}")
    _check(ties, query_positions, reference_positions, query, reference)
    top = exact_top(query, reference, max(ks), chunk_size)
    distance = distances_m(query_positions, top.query, reference_positions, top.reference)
    decayed = np.exp(-scale * distance)
    result = {}
    for name in ks:
        k = int(min(name, len(reference_positions)))  # a gallery smaller than K: all of it
        share = _weights(top, distance, ties, k, lambda position: np.ones_like(position, dtype=np.float64))
        rank_weight = _weights(top, distance, ties, k, lambda position, k=k: k - position)
        result[f"Dis@{name}"] = float(np.mean(np.bincount(top.query, share * distance, minlength=top.num_queries) / k))
        sdm = np.bincount(top.query, rank_weight * decayed, minlength=top.num_queries) / (k * (k + 1) / 2)
        result[f"SDM@{name}"] = float(np.mean(sdm))
    return result
