"""Where each query's best correct reference stands: the counts R@k, the hit rate and their tie rule need.

:func:`rank_counts` asks one question of the exact ranking engine
(:mod:`cvbench.evaluation.exact_ranking`) per chunk of queries;
:func:`rank_counts_many` asks several in the same sweeps (recall and the
hit rate), so the products, the dominant cost, are paid once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import exact_scores
from .exact_ranking import QUERY_CHUNK, ChunkScores, placement, score_chunks
from .inputs import (
    ArrayLike,
    as_index_table,
    as_reference_sets,
    check_positive_int,
    matrix_shape,
)


@dataclass(frozen=True)
class RankCounts:
    """Where each query's best correct reference stands among the gallery: the counts R@k and hit rates need.

    For query i, ``above[i]`` wrong references score strictly higher than its
    best correct one, ``tied[i]`` wrong references score exactly the same,
    and ``tied_correct[i]`` correct references (the best one included, so at
    least 1) share that score. Wrong means neither correct nor ignored.
    ``size`` is M, the gallery's size. From :func:`rank_counts` with ``ks``,
    a row whose R@k is already decided for every k asked for carries
    ``(above, 0, 1)`` with ``above`` the count certainly above, which gives
    the same R@k; ``exact`` says which rows hold the true counts. A row that
    is not exact may hold ties, but none that changes its R@k for those k.
    """

    above: np.ndarray
    tied: np.ndarray
    tied_correct: np.ndarray
    exact: np.ndarray
    size: int


def _best_correct(queries: torch.Tensor, gallery: exact_scores.Gallery, correct: torch.Tensor) -> torch.Tensor:
    """Per query, the gallery row of its highest-scoring correct reference (``correct`` (c, K), -1 pads, col 0 set).

    A running maximum whose every comparison is exact
    (:func:`~cvbench.evaluation.exact_scores.exact_signs`).
    """
    best = gallery.inverse[correct[:, 0]]
    for refs in correct[:, 1:].t():
        rows = (refs >= 0).nonzero()[:, 0]
        if rows.numel() == 0:
            continue
        candidates = gallery.inverse[refs[rows]]
        signs = exact_scores.exact_signs(queries, gallery.vectors, rows, candidates, best)
        better = signs > 0
        best[rows[better]] = candidates[better]
    return best


def _signs_against(queries: torch.Tensor, gallery: exact_scores.Gallery, table: torch.Tensor,
                   targets: torch.Tensor) -> torch.Tensor:
    """Exact sign of (score of ``table[i, j]`` - score of row i's target) for each reference of a (c, K) table.

    Padding (-1) gets sign -2, which no real comparison gives.
    """
    signs = torch.full(table.shape, -2, dtype=torch.int64)
    rows, cols = (table >= 0).nonzero(as_tuple=True)
    if rows.numel():
        signs[rows, cols] = exact_scores.exact_signs(queries, gallery.vectors, rows,
                                                     gallery.inverse[table[rows, cols]], targets)
    return signs


@dataclass(frozen=True)
class Question:
    """One ranking asked of the sweeps: each query's correct references, ignored ones, and the k that matter.

    ``correct`` (N, K) and ``ignored`` (N, J) are -1 padded reference
    tables; ``ks`` None asks for exact counts everywhere.
    """

    correct: torch.Tensor
    ignored: torch.Tensor | None = None
    ks: Sequence[int] | None = None


def rank_counts(
    query: ArrayLike,
    reference: ArrayLike,
    correct: ArrayLike,
    ignored: ArrayLike | None = None,
    ks: Sequence[int] | None = None,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    max_device_bytes: int | None = None,
) -> RankCounts:
    """Exact :class:`RankCounts` of every query, its correct references given as a (N, K) table.

    ``correct`` lists each query's correct references (a vector (N,) for one
    each, or a table (N, K) / list of lists, -1 pads, at least one per row).
    ``ignored`` (N, J) lists references that count neither way (VIGOR's
    semi-positives under the authors' hit rate). Without ``ks`` every count
    is exact; with ``ks`` a row is counted exactly only where some k in ``ks``
    is in doubt (see :class:`RankCounts`): most rows then cost one sweep of
    the gallery. ``device`` and ``max_device_bytes`` say where the ranking
    runs (:func:`~cvbench.evaluation.exact_ranking.placement`).
    """
    matrix_shape(query, "query")
    count, size = _count(query), _count(reference)
    table = as_reference_sets(correct, count, size, "positives")
    skip = None if ignored is None else as_index_table(ignored, count, size, "ignored")
    return rank_counts_many(query, reference, [Question(table, skip, ks)], chunk_size, device, max_device_bytes)[0]


def _count(x: ArrayLike) -> int:
    return int(x.shape[0]) if hasattr(x, "shape") else len(x)


def rank_counts_many(query: ArrayLike, reference: ArrayLike, questions: Sequence[Question],
                     chunk_size: int | None = None, device: torch.device | str | None = None,
                     max_device_bytes: int | None = None) -> list[RankCounts]:
    """:func:`rank_counts` for several questions of the same embeddings, sharing each sweep's products.

    Recall and the hit rate ask two questions (the hit rate's correct set adds
    the semi-positives, or ignores them); each question's target is one slot
    of the same sweep, so the products, the dominant cost, are paid once.
    """
    where = placement((query, reference), device, max_device_bytes)
    queries, gallery = exact_scores.queries_and_gallery(query, reference)
    count = queries.shape[0]
    asked = []
    for question in questions:
        ignored = question.ignored
        if ignored is not None:  # a correct reference is never ignored
            clash = (ignored[:, :, None] == question.correct[:, None, :]).any(dim=2)
            ignored = ignored.masked_fill(clash, -1)
        thresholds = None if question.ks is None else torch.tensor(
            sorted({check_positive_int(k, "each k in ks") for k in question.ks}))
        asked.append((question.correct, ignored, thresholds))
    chunk = QUERY_CHUNK if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    outputs = [(torch.empty(count, dtype=torch.int64), torch.zeros(count, dtype=torch.int64),
                torch.ones(count, dtype=torch.int64), torch.ones(count, dtype=torch.bool)) for _ in asked]
    for start, chunk_scores in score_chunks(queries, gallery, chunk, where):
        _count_chunk(chunk_scores, gallery, asked, start, outputs)
    return [RankCounts(above.numpy(), tied.numpy(), tied_correct.numpy(), exact.numpy(), gallery.size)
            for above, tied, tied_correct, exact in outputs]


def _count_chunk(chunk_scores: ChunkScores, gallery: exact_scores.Gallery, asked: list[tuple],
                 start: int, outputs: list[tuple[torch.Tensor, ...]]) -> None:
    """Every question's counts for one chunk's rows, written into its ``output`` (above, tied, tied_correct, exact).

    One sweep brackets every question's count; a second, for the rows where
    some question's k is in doubt, counts them exactly.
    """
    part = chunk_scores.queries
    stop = start + part.shape[0]
    targets = torch.stack([_best_correct(part, gallery, correct[start:stop]) for correct, _, _ in asked], dim=1)
    doubt = torch.ones(targets.shape, dtype=torch.bool)
    bracketed = [i for i, (_, _, thresholds) in enumerate(asked) if thresholds is not None]
    if bracketed:
        lower, upper = chunk_scores.bracket(targets[:, bracketed])
        for slot, i in enumerate(bracketed):
            _, ignored, thresholds = asked[i]
            above, _, _, exact = outputs[i]
            low = lower[:, slot] - (0 if ignored is None else (ignored[start:stop] >= 0).sum(dim=1))
            low = low.clamp_(min=0)  # an ignored one may be above
            doubt[:, i] = ((low[:, None] < thresholds) & (thresholds <= upper[:, slot, None])).any(dim=1)
            above[start:stop] = low
            exact[start:stop] = False
    rows = doubt.any(dim=1).nonzero()[:, 0]
    if rows.numel() == 0:
        return
    higher, same = chunk_scores.subset(rows).exact_counts(targets[rows].masked_fill(~doubt[rows], -1))
    for i, (correct, ignored, _) in enumerate(asked):
        picked = doubt[rows, i]
        if bool(picked.any()):
            _finish(part, gallery, correct[start:stop], None if ignored is None else ignored[start:stop],
                    rows[picked], targets[rows[picked], i], higher[picked, i], same[picked, i], start,
                    outputs[i])


def _finish(part: torch.Tensor, gallery: exact_scores.Gallery, right: torch.Tensor, ignore: torch.Tensor | None,
            rows: torch.Tensor, targets: torch.Tensor, higher: torch.Tensor, same: torch.Tensor, start: int,
            output: tuple[torch.Tensor, ...]) -> None:
    """Exact counts of ``rows`` from the exact counts around their ``targets``, less the correct and ignored ones."""
    above, tied, tied_correct, exact = output
    part_queries = part[rows]
    right_signs = _signs_against(part_queries, gallery, right[rows], targets) if right.shape[1] > 1 \
        else torch.zeros((rows.numel(), 1), dtype=torch.int64)
    correct_same = (right_signs == 0).sum(dim=1)
    ignored_same = torch.zeros_like(correct_same)
    higher = higher.clone()
    if ignore is not None:
        ignore_signs = _signs_against(part_queries, gallery, ignore[rows], targets)
        higher -= (ignore_signs > 0).sum(dim=1)
        ignored_same = (ignore_signs == 0).sum(dim=1)
    index = rows + start
    above[index] = higher
    tied[index] = same - correct_same - ignored_same
    tied_correct[index] = correct_same
    exact[index] = True
