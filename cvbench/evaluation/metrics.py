"""Retrieval metrics for cross-view geo-localization: exact R@k, hit rate, AP, ranks, uniformity.

Queries and references are compared by cosine similarity: both are
L2-normalised in float32 and scored by inner product. Every comparison of two
scores is decided on the exact inner products of those unit vectors
(:mod:`cvbench.evaluation.exact_ranking` and :mod:`cvbench.evaluation.rank_counts` say how), so the numbers do not
depend on the chunk size, the device, the input type or the BLAS.

**Correct references.** Query i's correct references are ``positives[i]``
(one index, or several: University-1652's satellite-to-drone queries have
about 54) and any ``also_correct[i]`` (CVACT_test's tiles within 25 m). Its
best correct reference is the highest-scoring of them; the references that
are not correct are the wrong ones.

**Conventions** (:class:`Conventions`; every record names the ones used):

- ``ties``: with s wrong references strictly above the best correct one and
  t wrong ones tied with it (and p correct ones at that score), R@k counts
  ``min(1, max(0, (k - s) / (t + 1)))`` for p = 1 under ``"random"`` (the
  default): the expectation over a random order of the tied references, so
  a collapsed model, all embeddings equal, scores chance k/M and never 100.
  For p > 1 it is the chance that a random order puts one of the p correct
  references among the first k - s. ``"optimistic"`` counts s < k: ties go
  to the truth, as the SAFA, VIGOR and Sample4Geo evaluation scripts do.
- ``one_percent``: R@1% counts rank < floor(M / 100) + 1 under
  ``"floor+1"`` (the default: the CVM-Net and VIGOR evaluation code, the
  lineage the thesis compares with) and rank < max(1, floor(M / 100)) under
  ``"floor"`` (Sample4Geo, TransGeo).
- ``hit_rate`` (VIGOR's semi-positives): ``"paper"`` (the default): the top-1
  reference is the positive or one of its semi-positives (R@1 with the
  semi-positives counted correct); ``"code"``: no reference outside the
  positive and its semi-positives outranks the positive (the VIGOR
  authors' script: R@1 with the semi-positives left out of the gallery).

**AP** is the average precision over all of a query's correct references
(percent, mean over queries), the metric University-1652 reports beside R@1;
for one correct reference it is the reciprocal rank.

**Uniformity** (thesis eq 3.5, Wang and Isola 2020) is the log of the mean
Gaussian potential ``exp(-t ||z_i - z_j||^2)`` over ordered pairs i != j of
L2-normalised embeddings; see :func:`uniformity`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..contract.metric import ONE_PERCENT, TIES, Conventions
from . import exact_scores
from .exact_ranking import QUERY_CHUNK, placement, score_chunks
from .inputs import (
    ArrayLike,
    as_index_table,
    as_reference_sets,
    as_unit_rows,
    check_positive_int,
    matrix_shape,
)
from .localisation import EARTH_RADIUS_M, Positions, haversine_m, localisation_report, positions, top_k_distances
from .rank_counts import Question, RankCounts, rank_counts, rank_counts_many

__all__ = ["EARTH_RADIUS_M", "Conventions", "Positions", "RankCounts", "RecallReport", "as_unit_rows",
           "average_precision", "haversine_m", "hit_rate_of", "localisation_report", "one_percent_k", "positions",
           "rank_counts", "ranks", "recall", "recall_from_counts", "recall_report", "top_k_distances", "uniformity",
           "uniformity_report"]

def one_percent_k(size: int, rule: str = "floor+1") -> int:
    """The k of R@1% for a gallery of ``size`` references under ``rule`` ("floor+1" or "floor")."""
    if rule not in ONE_PERCENT:
        raise ValueError(f"one_percent must be one of {', '.join(ONE_PERCENT)}, got {rule!r}")
    return size // 100 + 1 if rule == "floor+1" else max(1, size // 100)


def _correct_sets(positives: ArrayLike, also_correct: ArrayLike | None, count: int, size: int) -> torch.Tensor:
    """Positives and also-correct references as one (N, K) table of each query's correct references."""
    table = as_reference_sets(positives, count, size, "positives")
    if also_correct is None:
        return table
    also = as_index_table(also_correct, count, size, "also_correct")
    return as_reference_sets(torch.cat([table, also], dim=1), count, size, "positives")


def _sizes(query: ArrayLike, reference: ArrayLike) -> tuple[int, int]:
    """(N, M), checking both are non-empty matrices before anything is built from their counts."""
    return matrix_shape(query, "query")[0], matrix_shape(reference, "reference")[0]


def found_at(counts: RankCounts, k: int, ties: str = "random") -> np.ndarray:
    """Per query, the (expected) 0..1 credit R@k gives it under ``ties``."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    s, t, p = counts.above, counts.tied, counts.tied_correct
    if ties == "optimistic":
        return (s < k).astype(np.float64)
    j = k - s
    credit = (j > t).astype(np.float64)  # more places left than wrong ties: a correct one is surely among them
    open_rows = (j >= 1) & (j <= t)
    if open_rows.any():
        jj, tt, pp = (torch.from_numpy(v[open_rows].astype(np.float64)) for v in (j, t, p))
        # P(none of the p correct in the first j of t + p in random order) = C(t, j) / C(t + p, j)
        log_miss = (torch.lgamma(tt + 1) - torch.lgamma(tt - jj + 1) - torch.lgamma(tt + pp + 1)
                    + torch.lgamma(tt + pp - jj + 1))
        credit[open_rows] = (1.0 - torch.exp(log_miss)).numpy()
    return credit


def recall_from_counts(counts: RankCounts, ks: Sequence[int] = (1, 5, 10), conventions: Conventions = Conventions()
                       ) -> dict[str, float]:
    """``{"R@1": .., "R@5": .., "R@10": .., "R@1%": ..}`` in percent from :func:`rank_counts`'s counts."""
    result = {f"R@{k}": float(100.0 * found_at(counts, k, conventions.ties).mean()) for k in ks}
    result["R@1%"] = float(100.0 * found_at(counts, one_percent_k(counts.size, conventions.one_percent),
                                            conventions.ties).mean())
    return result


def ranks(
    query: ArrayLike, reference: ArrayLike, positives: ArrayLike, chunk_size: int | None = None,
    also_correct: ArrayLike | None = None, device: torch.device | str | None = None,
    max_device_bytes: int | None = None,
) -> np.ndarray:
    """Rank of each query's best correct reference: how many wrong references score strictly higher (N,) int64.

    ``query`` (N, D) and ``reference`` (M, D) are embeddings (numpy or torch,
    any float dtype) compared by cosine similarity; ``positives[i]`` is the
    index (or a list of indices) of query i's true match. A reference tied
    with it does not count. ``chunk_size`` queries are ranked per chunk
    (default 4096). The ranking runs on ``device`` (default: where torch
    inputs are, else :func:`~cvbench.evaluation.exact_ranking.ranking_device`'s, else the CPU); a gallery
    over ``max_device_bytes`` streams there from host memory in parts. The
    result depends on none of these.
    """
    count, size = _sizes(query, reference)
    return rank_counts(query, reference, _correct_sets(positives, also_correct, count, size),
                       chunk_size=chunk_size, device=device, max_device_bytes=max_device_bytes).above


def recall(
    query: ArrayLike,
    reference: ArrayLike,
    positives: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    semi_positives: ArrayLike | None = None,
    chunk_size: int | None = None,
    also_correct: ArrayLike | None = None,
    ties: str = "random",
    one_percent: str = "floor+1",
    hit_rate: str = "paper",
    device: torch.device | str | None = None,
    max_device_bytes: int | None = None,
) -> dict[str, float]:
    """Top-k recall in percent: ``{"R@1": .., "R@5": .., "R@10": .., "R@1%": ..}``, keys in the order of ``ks``.

    A query counts at k when one of its correct references (``positives``,
    one index or a list per query, and ``also_correct``) is among the k best;
    ``ties``, ``one_percent`` and ``hit_rate`` are the conventions of the
    module docstring. With ``semi_positives`` (N, K) padded with -1, or a
    list of lists (VIGOR), "hit_rate" is also returned, as ``hit_rate``
    defines it. ``chunk_size``, ``device`` and ``max_device_bytes`` are as
    for :func:`ranks`.
    """
    return recall_report(query, reference, positives, ks, semi_positives, also_correct,
                         Conventions(ties, one_percent, hit_rate), chunk_size, device, max_device_bytes).values


@dataclass(frozen=True)
class RecallReport:
    """:func:`recall`'s values, and the percentage of queries whose R@k depends on how ties are broken.

    Those are the queries whose best correct reference ties with a wrong one
    where a k it reports falls inside the tie (a tie far down the ranking
    changes no R@k).
    """

    values: dict[str, float]
    tied_queries: float


def recall_report(
    query: ArrayLike,
    reference: ArrayLike,
    positives: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    semi_positives: ArrayLike | None = None,
    also_correct: ArrayLike | None = None,
    conventions: Conventions = Conventions(),
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    max_device_bytes: int | None = None,
) -> RecallReport:
    """:func:`recall` under ``conventions``, with the share of tied queries a record should warn about."""
    ks = [check_positive_int(k, "each k in ks") for k in ks]
    count, size = _sizes(query, reference)
    correct = _correct_sets(positives, also_correct, count, size)
    questions = [Question(correct, None, [*ks, one_percent_k(size, conventions.one_percent)])]
    if semi_positives is not None:  # asked in the same sweeps: one product serves both
        questions.append(_hit_question(correct, semi_positives, conventions, count, size))
    counts = rank_counts_many(query, reference, questions, chunk_size, device, max_device_bytes)
    values = recall_from_counts(counts[0], ks, conventions)
    if semi_positives is not None:
        values["hit_rate"] = float(100.0 * found_at(counts[1], 1, conventions.ties).mean())
    return RecallReport(values, float(100.0 * np.mean(counts[0].tied > 0)))


def _hit_question(correct: torch.Tensor, semi_positives: ArrayLike, conventions: Conventions, count: int,
                  size: int) -> Question:
    """The hit rate as a ranking question: R@1 with the semi-positives correct (paper) or left out (code)."""
    semi = as_index_table(semi_positives, count, size, "semi_positives")
    if conventions.hit_rate == "paper":
        return Question(as_reference_sets(torch.cat([correct, semi], dim=1), count, size, "positives"), None, (1,))
    return Question(correct, semi, (1,))


def hit_rate_of(query: ArrayLike, reference: ArrayLike, correct: ArrayLike, semi_positives: ArrayLike,
                conventions: Conventions = Conventions(), chunk_size: int | None = None,
                device: torch.device | str | None = None, max_device_bytes: int | None = None) -> float:
    """VIGOR's hit rate in percent under ``conventions.hit_rate`` (see the module docstring)."""
    count, size = _sizes(query, reference)
    question = _hit_question(as_reference_sets(correct, count, size, "positives"), semi_positives, conventions,
                             count, size)
    counts = rank_counts_many(query, reference, [question], chunk_size, device, max_device_bytes)[0]
    return float(100.0 * found_at(counts, 1, conventions.ties).mean())


def _harmonic_span(start: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """sum_{q=0}^{length-1} 1 / (start + q + 1) = H(start + length) - H(start), in float64."""
    return torch.digamma(start + length + 1) - torch.digamma(start + 1)


def average_precision(
    query: ArrayLike,
    reference: ArrayLike,
    positives: ArrayLike,
    also_correct: ArrayLike | None = None,
    ties: str = "random",
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    max_device_bytes: int | None = None,
) -> float:
    """Mean average precision over queries, in percent, each query's AP over all its correct references.

    A query with P correct references at (1-based) positions r_1 < ... < r_P
    of the ranking has AP = (1/P) sum_i i / r_i. Positions are exact; where
    correct and wrong references tie, ``ties="random"`` takes the expected AP
    over a random order of the tied group, ``"optimistic"`` puts the correct
    ones first. Every correct reference is a target of the same sweep, so
    University-1652's satellite-to-drone queries (about 54 each) cost one
    product per tile. ``chunk_size``, ``device`` and ``max_device_bytes``
    are as for :func:`ranks`.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    where = placement((query, reference), device, max_device_bytes)
    queries, gallery = exact_scores.queries_and_gallery(query, reference)
    count = queries.shape[0]
    correct = _correct_sets(positives, also_correct, count, gallery.size)
    above = torch.full(correct.shape, -1, dtype=torch.int64)
    same = torch.ones(correct.shape, dtype=torch.int64)
    chunk = QUERY_CHUNK if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    for start, chunk_scores in score_chunks(queries, gallery, chunk, where):
        refs = correct[start:start + len(chunk_scores.queries)]
        targets = gallery.inverse[refs.clamp(min=0)].masked_fill(refs < 0, -1)
        higher, equal = chunk_scores.exact_counts(targets)
        above[start:start + len(refs)] = torch.where(refs >= 0, higher, -1)
        same[start:start + len(refs)] = equal
    valid = correct >= 0
    a, g = above.double(), same.double()
    # per correct reference: p correct ones at its score (its tie group), c correct ones strictly above it
    peers = (above[:, :, None] == above[:, None, :]) & valid[:, None, :]
    p = peers.sum(dim=2).double()
    c = ((above[:, None, :] < above[:, :, None]) & valid[:, None, :]).sum(dim=2).double()
    if ties == "optimistic":  # the group's correct references first: sum_{i=1}^{p} (c + i) / (a + i)
        group = p - (a - c) * _harmonic_span(a, p)
    else:  # expectation over a random order of the group's g references (see the module docstring)
        span = _harmonic_span(a, g)
        spread = torch.where(g > 1, (p - 1) / (g - 1).clamp(min=1), torch.zeros_like(g))
        group = (p / g) * ((c + 1) * span + spread * (g - (a + 1) * span))
    per_query = torch.where(valid, group / p, torch.zeros_like(group)).sum(dim=1) / valid.sum(dim=1)
    return float(100.0 * per_query.mean())


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
