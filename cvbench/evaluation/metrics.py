"""Retrieval metrics for cross-view geo-localization: exact R@k, ranks, hit rate, uniformity.

Queries (ground images) and references (aerial images) are compared by cosine
similarity: both are L2-normalised in float32 and scored by inner product.

**Rank.** The rank of query i is the number of references whose score is
*strictly* higher than the score of its true match ``positives[i]``. Ties go to
the true match, as in the SAFA, VIGOR and Sample4Geo evaluation code, so a
reference that duplicates the true match never pushes it down. R@k is the
percentage of queries with rank < k (the true match is among the k best, thesis
section 4.1); R@1% uses k = max(1, M // 100) for M references.

The ranks are exact: every comparison of two scores is decided on the real
inner products, so the numbers do not depend on the chunk size, the input
type or the BLAS (:mod:`cvbench.evaluation.exact_ranking` says how, and why it is
needed).

**Uniformity** (thesis eq 3.5, Wang and Isola 2020) is the log of the mean
Gaussian potential ``exp(-t ||z_i - z_j||^2)`` over ordered pairs i != j of
L2-normalised embeddings; see :func:`uniformity`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .exact_ranking import rank_queries
from .inputs import ArrayLike, as_unit_rows, check_positive_int

__all__ = ["as_unit_rows", "ranks", "recall", "uniformity", "uniformity_report"]


def ranks(
    query: ArrayLike, reference: ArrayLike, positives: ArrayLike, chunk_size: int | None = None
) -> np.ndarray:
    """Rank of each query's true match: how many references score strictly higher (N,) int64.

    ``query`` (N, D) and ``reference`` (M, D) are embeddings (numpy or torch,
    any float dtype) compared by cosine similarity; ``positives[i]`` is the
    index of query i's true match. Ties go to the true match. ``chunk_size``
    queries are scored per block (default: a ~256 MiB float32 block); the
    result does not depend on it.
    """
    return rank_queries(query, reference, positives, None, chunk_size, None)[0]


def recall(
    query: ArrayLike,
    reference: ArrayLike,
    positives: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    semi_positives: ArrayLike | None = None,
    chunk_size: int | None = None,
    also_correct: ArrayLike | None = None,
) -> dict[str, float]:
    """Top-k recall in percent: ``{"R@1": .., "R@5": .., "R@10": .., "R@1%": ..}``.

    R@k is the percentage of queries whose true match has rank < k (see
    :func:`ranks`); "R@1%" uses k = max(1, M // 100). Keys follow ``ks``.

    With ``semi_positives`` (N, K) reference indices padded with -1, or a list
    of lists (VIGOR), "hit_rate" is also returned: the percentage of queries
    whose top-1 reference is the positive or one of its semi-positives. The
    top-1 is the highest-scoring reference, ties broken by the lowest index,
    except that a positive tied with the best score counts as a hit (rank 0,
    as in R@1), so hit_rate >= R@1 always.

    With ``also_correct`` (N, K) padded with -1, or a list of lists, a query
    also counts as found at k when any of those references ranks < k
    (CVACT_test counts every tile within 25 m of the query): its rank is the
    number of references outside the correct set scoring above the best
    correct one.
    """
    ks = [check_positive_int(k, "each k in ks") for k in ks]
    rank, hits, size = rank_queries(query, reference, positives, semi_positives, chunk_size, ks, also_correct)
    result = {f"R@{k}": float(100.0 * np.mean(rank < k)) for k in ks}
    result["R@1%"] = float(100.0 * np.mean(rank < max(1, size // 100)))
    if hits is not None:
        result["hit_rate"] = float(100.0 * np.mean(hits))
    return result


def _check_temperature(t: float) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not math.isfinite(t) or t <= 0:
        raise ValueError(f"t must be a positive finite number, got {t!r}")
    return float(t)


def _log_mean_potential(z: torch.Tensor, t: float, chunk_size: int | None) -> float:
    """log mean_{i != j} exp(-t ||z_i - z_j||^2) for float64 unit rows ``z``, streamed by row chunks."""
    count = z.shape[0]
    chunk = max(1, 2**24 // count) if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    total = torch.tensor(-math.inf, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            # ||z_i - z_j||^2 = 2 - 2 <z_i, z_j> on the unit sphere, so the log potential is 2t (<z_i, z_j> - 1).
            logits = torch.mm(z[start:stop], z.t()).sub_(1.0).mul_(2.0 * t).clamp_(max=0.0)
            own = torch.arange(stop - start)
            logits[own, own + start] = -math.inf
            total = torch.logaddexp(total, torch.logsumexp(logits.reshape(-1), dim=0))
    return float(total) - math.log(count * (count - 1))


def _unit_rows_for_uniformity(z: ArrayLike, name: str) -> torch.Tensor:
    unit = as_unit_rows(z, name, torch.float64)
    if unit.shape[0] < 2:
        raise ValueError(f"uniformity needs at least 2 embeddings in {name}, got {unit.shape[0]}")
    return unit


def uniformity(z: ArrayLike, t: float = 2.0, chunk_size: int | None = None) -> float:
    """Uniformity of embeddings on the hypersphere (thesis eq 3.5; Wang and Isola 2020).

    ``log( mean_{i != j} exp(-t ||z_i - z_j||^2) )`` over the ordered pairs of
    distinct rows of ``z`` (N, D), N >= 2. The rows are L2-normalised first,
    because the metric is defined for the unit-sphere encoder f of eq 3.5.
    Computed in float64, ``chunk_size`` rows at a time (memory O(chunk x N)),
    with a streaming log-sum-exp. Lower is more uniform; the value lies in
    [-4t, 0]: 0 when all points coincide, -4t for two antipodal points.
    """
    return _log_mean_potential(_unit_rows_for_uniformity(z, "z"), _check_temperature(t), chunk_size)


def uniformity_report(ground: ArrayLike, aerial: ArrayLike, t: float = 2.0) -> dict[str, float]:
    """Uniformity within ground features, within satellite features and over both (thesis eq 3.6-3.8).

    The thesis writes eqs 3.6-3.8 as a log *sum* over pairs; this uses the log
    *mean* of eq 3.5 (as Wang and Isola) so the values do not depend on how many
    embeddings there are; they differ from the log-sum by log(N (N - 1)).
    ``ground`` and ``aerial`` may have different counts (eq 3.8 assumes N each).
    """
    t = _check_temperature(t)
    g = _unit_rows_for_uniformity(ground, "ground")
    a = _unit_rows_for_uniformity(aerial, "aerial")
    if g.shape[1] != a.shape[1]:
        raise ValueError(f"ground and aerial dimensions differ: {g.shape[1]} vs {a.shape[1]}")
    return {
        "ground": _log_mean_potential(g, t, None),
        "satellite": _log_mean_potential(a, t, None),
        "all": _log_mean_potential(torch.cat([g, a]), t, None),
    }
