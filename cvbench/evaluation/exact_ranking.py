"""The exact ranking engine: a chunk's score block and exact comparisons on it (:class:`ChunkScores`).

What :mod:`cvbench.evaluation.rank_counts` asks its questions of, and
:func:`cvbench.metrics.average_precision` ranks every correct reference with.

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
from typing import Iterator

import torch

from . import exact_scores

SCORE_BLOCK_ELEMENTS = 2**26
"""Default chunk x M size of one float32 score block (256 MiB)."""

_FALLBACK_FRACTION = 8  # rescore a chunk in float64 when over 1/8 of its scores are undecided
TILE_ELEMENTS = 2**23  # scores per column tile of a sweep (a 32 MiB float32 scratch)


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


class ChunkScores:
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

    def subset(self, rows: torch.Tensor) -> ChunkScores:
        """The same comparisons for some rows only (a copy of their scores, unless that is all rows)."""
        if rows.shape[0] == self.scores.shape[0]:
            return self
        return ChunkScores(self.scores[rows], self.queries[rows], self.gallery, self.workspace)

    def _tiles(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(first column, tile of scores, scratch of the tile's shape and dtype) for each column tile."""
        count, columns = self.scores.shape
        width = min(columns, max(1024, TILE_ELEMENTS // count))
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
def ieee_float32_matmul() -> Iterator[None]:
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


def score_chunks(queries: torch.Tensor, gallery: exact_scores.Gallery, chunk: int) -> Iterator[tuple[int, ChunkScores]]:
    """(first query row, its chunk's :class:`ChunkScores`) for each chunk of ``chunk`` unit-row queries.

    One float32 block and one sweep scratch serve every chunk; products run
    in IEEE float32 (:func:`ieee_float32_matmul`). A chunk's scores are valid
    until the next one is yielded.
    """
    count, distinct = queries.shape[0], gallery.vectors.shape[0]
    block = torch.empty((min(chunk, count), distinct), dtype=torch.float32)
    workspace = torch.empty(max(TILE_ELEMENTS, min(chunk, count) * 1024), dtype=torch.float32)
    with torch.no_grad(), ieee_float32_matmul():
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            scores = torch.mm(queries[start:stop], gallery.vectors.t(), out=block[: stop - start])
            yield start, ChunkScores(scores, queries[start:stop], gallery, workspace)
