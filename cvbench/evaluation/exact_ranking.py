"""The exact ranking engine behind :func:`cvbench.metrics.ranks` and :func:`cvbench.metrics.recall`.

**Exactness.** A float32 matrix product is not a function of its two vectors
alone: MKL sums a row in an order that depends on the shape of the block (and
even on the column), so two identical references can get scores one ulp apart
and a query's scores change with the chunk size. Comparing those raw numbers
would turn exact ties into random ranks. Here a score means the exact real
inner product of the float32 unit vectors, and every comparison is decided
exactly: the float32 product settles every reference whose score differs from
the target's by more than its rounding-error bound (Higham's gamma_D bound,
below); the few that fall inside the bound are compared exactly from the vectors
(float64 with its own error bound, then ``math.fsum`` when even that cannot
tell). Identical references are merged before the product, so a collapsed
gallery costs nothing extra. The numbers therefore do not depend on the chunk
size, the input type or the BLAS.

**Memory.** Queries are scored in chunks: one (chunk, D) x (D, M) float32
product per chunk, so memory is O(chunk x M + (N + M) x D) and the N x M matrix
is never built. The default chunk keeps the chunk x M block near 256 MiB. The
comparisons sweep that block in column tiles; recall needs one
sweep per chunk for most queries, and exact ranks only where a k is in doubt.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from . import exact_scores
from .inputs import (
    ArrayLike,
    as_index_table,
    as_matrix,
    as_reference_sets,
    check_positive_int,
    matrix_shape,
    normalize_rows_,
)

SCORE_BLOCK_ELEMENTS = 2**26
"""Default chunk x M size of one float32 score block (256 MiB)."""

_FALLBACK_FRACTION = 8  # rescore a chunk in float64 when over 1/8 of its scores are undecided
_TILE_ELEMENTS = 2**23  # scores per column tile of a sweep (a 32 MiB float32 scratch)


@dataclass(frozen=True)
class _Comparison:
    """How the references compare with one target reference per query row of a chunk.

    ``above[i]`` counts the references (duplicates included) that certainly
    score higher than row i's target; the pairs (``rows``, ``cols``) the block
    could not decide (target excluded) carry their exact ``signs``
    (+1 higher, 0 tied, -1 lower).
    """

    above: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    signs: torch.Tensor


class _ChunkScores:
    """The score block of one query chunk against the distinct references, and exact comparisons on it.

    Rows are compared with thresholds derived from a target column's score,
    read from this same block. The block is swept in large column tiles, so
    that there are few torch ops: each is a parallel region, whose barrier is
    slow when other processes compete for the cores. When a float32 block leaves
    too many pairs within the tie window for exact comparison to be cheap
    (near-collapsed embeddings), the chunk is rescored in float64, whose window
    is 2^29 times narrower.
    """

    def __init__(
        self, scores: torch.Tensor, queries: torch.Tensor, gallery: exact_scores.Gallery, workspace: torch.Tensor
    ) -> None:
        self.scores = scores
        self.queries = queries
        self.gallery = gallery
        self.workspace = workspace  # flat float32 scratch for all sweeps: fresh ones would fragment the heap

    def subset(self, rows: torch.Tensor) -> _ChunkScores:
        """The same comparisons for some rows only (a copy of their scores, unless that is all rows)."""
        if rows.shape[0] == self.scores.shape[0]:
            return self
        return _ChunkScores(self.scores[rows], self.queries[rows], self.gallery, self.workspace)

    def _tiles(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(first column, tile of scores, scratch of the tile's shape and dtype) for each column tile."""
        count, columns = self.scores.shape
        width = min(columns, max(1024, _TILE_ELEMENTS // count))
        if self.workspace.dtype == self.scores.dtype and self.workspace.numel() >= count * width:
            scratch = self.workspace[: count * width].view(count, width)
        else:  # a float64 block
            scratch = torch.empty((count, width), dtype=self.scores.dtype)
        for start in range(0, columns, width):
            tile = self.scores[:, start : start + width]
            yield start, tile, scratch[:, : tile.shape[1]]

    def bounds(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) = score of row i's target -+ the tie window, as (c, 1) columns."""
        window = exact_scores.tie_window(self.queries.shape[1], self.scores.dtype)
        target_scores = self.scores.gather(1, targets[:, None])
        return target_scores - window, target_scores + window

    def _count(self, above: torch.Tensor, start: int) -> torch.Tensor:
        """Row sums of a 0/1 tile starting at column ``start``, each reference weighted by its duplicates.

        The tile holds 0.0 and 1.0 as floats: torch would sum a boolean tile
        through an integer copy four times its size. Float sums are exact
        here, being integers below 2^24 (float32) or 2^53 (float64).
        """
        if self.gallery.counts is None:
            return above.sum(dim=1).long()
        exact = above.dtype if self.gallery.size < 2**24 else torch.float64
        weights = self.gallery.counts[start : start + above.shape[1]].to(exact)
        return torch.mv(above.to(exact), weights).long()

    def count_above(self, thresholds: torch.Tensor) -> torch.Tensor:
        """Per row, how many references (duplicates included) score strictly above ``thresholds`` (c, 1)."""
        counts = torch.zeros(self.scores.shape[0], dtype=torch.int64)
        for start, tile, scratch in self._tiles():
            counts += self._count(torch.gt(tile, thresholds, out=scratch), start)
        return counts

    def _sweep(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Per row the count above ``high``, and the (rows, cols) with low <= score <= high.

        None when a float32 block has too many of the latter for exact comparison to be cheap.
        """
        budget = self.scores.numel()
        if self.scores.dtype == torch.float32:
            budget //= _FALLBACK_FRACTION
        counts = torch.zeros(self.scores.shape[0], dtype=torch.int64)
        rows, cols = [torch.empty(0, dtype=torch.int64)], [torch.empty(0, dtype=torch.int64)]
        found = 0
        for start, tile, scratch in self._tiles():
            counts += self._count(torch.gt(tile, high, out=scratch), start)
            band = torch.ge(tile, low).logical_and_(torch.le(tile, high))
            in_band = int(torch.count_nonzero(band))
            if in_band:
                found += in_band
                if found > budget:
                    return None
                tile_rows, tile_cols = band.nonzero(as_tuple=True)
                rows.append(tile_rows)
                cols.append(tile_cols + start)
        return counts, torch.cat(rows), torch.cat(cols)

    def compare(self, targets: torch.Tensor) -> _Comparison:
        """Exact comparison of every reference with row i's reference ``targets[i]`` (a gallery row)."""
        swept = self._sweep(*self.bounds(targets))
        if swept is None:
            self.scores = exact_scores.scores_float64(self.queries, self.gallery.vectors)
            swept = self._sweep(*self.bounds(targets))
            assert swept is not None  # a float64 block is never sent back
        above, rows, cols = swept
        other = cols != targets[rows]
        rows, cols = rows[other], cols[other]
        signs = exact_scores.exact_signs(self.queries, self.gallery.vectors, rows, cols, targets)
        return _Comparison(above, rows, cols, signs)

    def _weights(self, cols: torch.Tensor) -> torch.Tensor:
        """How many references each gallery row in ``cols`` stands for."""
        return torch.ones_like(cols) if self.gallery.counts is None else self.gallery.counts[cols]

    def exact_counts(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, (references scoring strictly above the target, references scoring exactly the same).

        Both count references, duplicates included; the second includes the
        target's own gallery row, so it is at least 1.
        """
        comparison = self.compare(targets)
        higher, equal = comparison.signs > 0, comparison.signs == 0
        above = comparison.above.index_add(0, comparison.rows[higher], self._weights(comparison.cols[higher]))
        same = self._weights(targets).clone()
        same.index_add_(0, comparison.rows[equal], self._weights(comparison.cols[equal]))
        return above, same

    def bracket(self, targets: torch.Tensor, largest_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, (references certainly above the target, references not certainly below it less one).

        The exact count above lies in between, and so does the count above
        plus the count tied with the target (itself excluded). A row with
        ``largest_k`` or more certainly above is decided for every k, so its
        upper end is left equal to its lower one: one sweep of the block,
        and a second only for the rows near the top.
        """
        lower = self.count_above(self.bounds(targets)[1])
        upper = lower.clone()
        near = (lower < largest_k).nonzero()[:, 0]
        if near.numel():
            part = self.subset(near)
            upper[near] = part.count_above(part.bounds(targets[near])[0]) - 1
        return lower, upper


@contextmanager
def _ieee_float32_matmul() -> Iterator[None]:
    """Keep float32 products in IEEE float32 while scoring.

    The tie window assumes float32 rounding; a process that allowed bf16 or
    TF32 products for training would break it, so they are switched off here
    and restored afterwards.
    """
    backend = torch.backends.mkldnn.matmul
    previous = getattr(backend, "fp32_precision", "ieee")
    if previous == "ieee":
        yield
        return
    backend.fp32_precision = "ieee"
    try:
        yield
    finally:
        backend.fp32_precision = previous


def default_chunk(columns: int) -> int:
    """Queries per block so that the (chunk, columns) float32 block is about 256 MiB."""
    return max(1, SCORE_BLOCK_ELEMENTS // columns)


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
    """One ranking asked of a score block: each query's correct references, ignored ones, and the k that matter.

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
) -> RankCounts:
    """Exact :class:`RankCounts` of every query, its correct references given as a (N, K) table.

    ``correct`` lists each query's correct references (a vector (N,) for one
    each, or a table (N, K) / list of lists, -1 pads, at least one per row).
    ``ignored`` (N, J) lists references that count neither way (VIGOR's
    semi-positives under the authors' hit rate). Without ``ks`` every count
    is exact; with ``ks`` a row is counted exactly only where some k in ``ks``
    is in doubt (see :class:`RankCounts`): most rows then cost one sweep of
    the score block.
    """
    matrix_shape(query, "query")
    count, size = _count(query), _count(reference)
    table = as_reference_sets(correct, count, size, "positives")
    skip = None if ignored is None else as_index_table(ignored, count, size, "ignored")
    return rank_counts_many(query, reference, [Question(table, skip, ks)], chunk_size)[0]


def _count(x: ArrayLike) -> int:
    return int(x.shape[0]) if hasattr(x, "shape") else len(x)


def rank_counts_many(query: ArrayLike, reference: ArrayLike, questions: Sequence[Question],
                     chunk_size: int | None = None) -> list[RankCounts]:
    """:func:`rank_counts` for several questions of the same embeddings, sharing each chunk's score product.

    Recall and the hit rate ask two questions of one block (the hit rate's
    correct set adds the semi-positives, or ignores them), so the product,
    the dominant cost, is paid once.
    """
    queries = as_matrix(query, "query", torch.float32)
    gallery = exact_scores.build_gallery(reference)
    if queries.shape[1] != gallery.vectors.shape[1]:
        raise ValueError(
            f"query and reference dimensions differ: query is (N, {queries.shape[1]}), "
            f"reference is (M, {gallery.vectors.shape[1]})"
        )
    normalize_rows_(queries, "query")
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
    distinct = gallery.vectors.shape[0]
    chunk = default_chunk(distinct) if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    outputs = [(torch.empty(count, dtype=torch.int64), torch.zeros(count, dtype=torch.int64),
                torch.ones(count, dtype=torch.int64), torch.ones(count, dtype=torch.bool)) for _ in asked]
    block = torch.empty((min(chunk, count), distinct), dtype=torch.float32)
    workspace = torch.empty(max(_TILE_ELEMENTS, min(chunk, count) * 1024), dtype=torch.float32)
    with torch.no_grad(), _ieee_float32_matmul():
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            part = queries[start:stop]
            scores = torch.mm(part, gallery.vectors.t(), out=block[: stop - start])
            chunk_scores = _ChunkScores(scores, part, gallery, workspace)
            for (correct, ignored, thresholds), output in zip(asked, outputs):
                _count_chunk(chunk_scores, part, gallery, correct[start:stop],
                             None if ignored is None else ignored[start:stop], thresholds, start, output)
    return [RankCounts(above.numpy(), tied.numpy(), tied_correct.numpy(), exact.numpy(), gallery.size)
            for above, tied, tied_correct, exact in outputs]


def _count_chunk(chunk_scores: _ChunkScores, part: torch.Tensor, gallery: exact_scores.Gallery,
                 right: torch.Tensor, ignore: torch.Tensor | None, thresholds: torch.Tensor | None, start: int,
                 output: tuple[torch.Tensor, ...]) -> None:
    """One question's counts for one chunk's rows, written into ``output`` (above, tied, tied_correct, exact)."""
    above, tied, tied_correct, exact = output
    stop = start + part.shape[0]
    targets = _best_correct(part, gallery, right)
    rows = torch.arange(stop - start)
    if thresholds is not None:
        lower, upper = chunk_scores.bracket(targets, int(thresholds.max()))
        lower = lower - (0 if ignore is None else (ignore >= 0).sum(dim=1))  # an ignored one may be above
        lower = lower.clamp_(min=0)
        rows = ((lower[:, None] < thresholds) & (thresholds <= upper[:, None])).any(dim=1).nonzero()[:, 0]
        above[start:stop] = lower
        exact[start:stop] = False
    if rows.numel() == 0:
        return
    part_targets = targets[rows]
    higher, same = chunk_scores.subset(rows).exact_counts(part_targets)
    part_queries = part[rows]
    right_signs = _signs_against(part_queries, gallery, right[rows], part_targets) if right.shape[1] > 1 \
        else torch.zeros((rows.numel(), 1), dtype=torch.int64)
    correct_same = (right_signs == 0).sum(dim=1)
    ignored_same = torch.zeros_like(correct_same)
    if ignore is not None:
        ignore_signs = _signs_against(part_queries, gallery, ignore[rows], part_targets)
        higher -= (ignore_signs > 0).sum(dim=1)
        ignored_same = (ignore_signs == 0).sum(dim=1)
    index = rows + start
    above[index] = higher
    tied[index] = same - correct_same - ignored_same
    tied_correct[index] = correct_same
    exact[index] = True
