"""Retrieval metrics for cross-view geo-localization: exact R@k, ranks, hit rate, uniformity.

Queries (ground images) and references (aerial images) are compared by cosine
similarity: both are L2-normalised in float32 and scored by inner product.

**Rank.** The rank of query i is the number of references whose score is
*strictly* higher than the score of its true match ``positives[i]``. Ties go to
the true match, as in the SAFA, VIGOR and Sample4Geo evaluation code, so a
reference that duplicates the true match never pushes it down. R@k is the
percentage of queries with rank < k (the true match is among the k best, thesis
section 4.1); R@1% uses k = max(1, M // 100) for M references.

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

**Uniformity** (thesis eq 3.5, Wang and Isola 2020) is the log of the mean
Gaussian potential ``exp(-t ||z_i - z_j||^2)`` over ordered pairs i != j of
L2-normalised embeddings; see :func:`uniformity`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

import numpy as np
import torch

__all__ = ["as_unit_rows", "ranks", "recall", "uniformity", "uniformity_report"]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

SCORE_BLOCK_ELEMENTS = 2**26
"""Default chunk x M size of one float32 score block (256 MiB)."""

_F32_UNIT = 2.0**-24  # unit roundoff of float32
_F64_UNIT = 2.0**-53  # unit roundoff of float64
_PAIR_BATCH_ELEMENTS = 2**22  # float64 elements per batch of exact comparisons (32 MiB)
_FALLBACK_FRACTION = 8  # rescore a chunk in float64 when over 1/8 of its scores are undecided
_TILE_ELEMENTS = 2**23  # scores per column tile of a sweep (a 32 MiB float32 scratch)


# --------------------------------------------------------------------------- inputs


def _as_matrix(x: ArrayLike, name: str, dtype: torch.dtype) -> torch.Tensor:
    """Return ``x`` as a fresh, contiguous CPU (rows, D) tensor of ``dtype``, validated.

    Raises ValueError for a wrong rank, an empty matrix, a non-real dtype or a
    value that is NaN or infinite once converted (1e39 overflows float32).
    """
    if isinstance(x, torch.Tensor):
        source = x.detach()
        if source.is_complex() or source.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers, got dtype {source.dtype}")
    else:
        source = np.asarray(x)
        if source.dtype.kind not in "fiu":
            raise ValueError(f"{name} must hold real numbers, got dtype {source.dtype}")
    shape = tuple(source.shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D (count, dim) matrix, got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {shape}")
    out = torch.empty(shape, dtype=dtype)
    if isinstance(source, torch.Tensor):
        out.copy_(source)
    else:  # numpy casts any dtype and byte order, and reads read-only and memory-mapped arrays
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf, reported just below
            out.numpy()[...] = source
    low, high = torch.aminmax(out)  # NaN propagates, so one cheap reduction checks every value
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        row = int((~torch.isfinite(out).all(dim=1)).nonzero()[0, 0])
        raise ValueError(f"{name} row {row} has NaN or infinite values (as {dtype}); embeddings must be finite")
    return out


def _normalize_rows_(x: torch.Tensor, name: str, row_ids: torch.Tensor | None = None) -> torch.Tensor:
    """L2-normalise the rows of ``x`` in place and return it.

    Rows are first divided by their largest magnitude so that no square
    overflows or underflows, whatever the scale of the input. A zero row has no
    direction, so cosine similarity is undefined for it: ValueError, naming the
    row (``row_ids`` maps rows of ``x`` to the caller's numbering).
    """
    scale = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_())
    zero = scale[:, 0] == 0
    if bool(zero.any()):
        row = int(zero.nonzero()[0, 0])
        row = int(row_ids[row]) if row_ids is not None else row
        raise ValueError(f"{name} row {row} is all zeros; cosine similarity needs a non-zero embedding")
    x.div_(scale)
    x.div_(torch.linalg.vector_norm(x, dim=1, keepdim=True))
    return x


def as_unit_rows(x: ArrayLike, name: str = "embeddings", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Validate ``x`` (N, D) (numpy or torch, any real dtype) and return its rows L2-normalised.

    This is the normalisation every metric here (and :mod:`cvbench.retrieval`)
    applies: a fresh contiguous CPU tensor of ``dtype``; ValueError names the
    problem (shape, emptiness, NaN/inf, all-zero row).
    """
    return _normalize_rows_(_as_matrix(x, name, dtype), name)


def _as_index_vector(values: ArrayLike, name: str, length: int, bound: int) -> torch.Tensor:
    """``values`` as an int64 tensor of shape (length,) with entries in [0, bound)."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(
            f"{name} must hold one reference index per query: expected shape ({length},), got {array.shape}"
        )
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer reference indices, got dtype {array.dtype}")
    bad = (array < 0) | (array >= bound)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {array[i]} is out of range for {bound} references")
    return torch.from_numpy(array.astype(np.int64))


def _as_index_table(values: ArrayLike, length: int, bound: int, name: str = "semi_positives") -> torch.Tensor:
    """Per-query reference lists (semi-positives, also-correct) as int64 (length, K) padded with -1.

    A list of lists may be ragged.
    """
    if isinstance(values, (list, tuple)):
        if len(values) != length:
            raise ValueError(f"{name} must have one row per query: expected {length} rows, got {len(values)}")
        rows = [np.asarray(row).reshape(-1) for row in values]
        for i, row in enumerate(rows):
            if row.size and row.dtype.kind not in "iu":
                raise ValueError(f"{name}[{i}] must be integer reference indices, got dtype {row.dtype}")
        array = np.full((length, max((row.size for row in rows), default=0)), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            array[i, : row.size] = row
    else:
        array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        if array.ndim != 2 or array.shape[0] != length:
            raise ValueError(f"{name} must have shape ({length}, K), got {array.shape}")
        if array.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer reference indices (-1 pads), got dtype {array.dtype}")
    bad = (array < -1) | (array >= bound)
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{i}][{k}] = {array[i, k]} is out of range for {bound} references (-1 pads)")
    return torch.from_numpy(array.astype(np.int64))


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# -------------------------------------------------------------------------- gallery


@dataclass(frozen=True)
class _Gallery:
    """The references with identical rows merged, so exact duplicates tie by construction.

    ``vectors`` (U, D) are the distinct references as float32 unit rows;
    reference m is ``vectors[inverse[m]]``; ``counts[u]`` is how many references
    share row u (None when all M are distinct) and ``first[u]`` the lowest of
    their indices, which breaks top-1 ties.
    """

    vectors: torch.Tensor
    inverse: torch.Tensor
    counts: torch.Tensor | None
    first: torch.Tensor
    size: int


def _may_repeat_rows(x: torch.Tensor) -> bool:
    """False only if no two rows of float32 ``x`` are identical: their first and last entries already differ.

    Compares bit patterns, without arithmetic, and costs far less than sorting whole rows.
    """
    bits = x.view(torch.int32)
    keys = (bits[:, 0].long() << 32) | (bits[:, -1].long() & 0xFFFFFFFF)
    return torch.unique(keys).shape[0] < x.shape[0]


def _build_gallery(reference: ArrayLike) -> _Gallery:
    """Validate, merge duplicate rows of and normalise the references.

    Duplicates are merged before normalising so that identical inputs get
    bit-identical unit vectors.
    """
    raw = _as_matrix(reference, "reference", torch.float32)
    size = raw.shape[0]
    identity = torch.arange(size)
    if not _may_repeat_rows(raw):
        return _Gallery(_normalize_rows_(raw, "reference"), identity, None, identity, size)
    unique, inverse, counts = torch.unique(raw, dim=0, return_inverse=True, return_counts=True)
    if unique.shape[0] == size:
        return _Gallery(_normalize_rows_(raw, "reference"), identity, None, identity, size)
    del raw
    first = torch.full((unique.shape[0],), size, dtype=torch.int64)
    first.scatter_reduce_(0, inverse, identity, reduce="amin")
    vectors = _normalize_rows_(unique.contiguous(), "reference", row_ids=first)
    return _Gallery(vectors, inverse, counts, first, size)


# ------------------------------------------------------------------- exact scoring


def _gamma(n: int, unit: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): relative error bound of an n-term floating-point dot product."""
    return n * unit / (1.0 - n * unit)


def _norm_bound(dim: int) -> float:
    """Upper bound on the norm of a row normalised in float32 (D squares summed, a root, D divisions)."""
    return 1.0 + 2.0 * _gamma(dim + 2, _F32_UNIT)


def _score_error(dim: int, dtype: torch.dtype) -> float:
    """Bound on |computed - exact| for a score of two normalised rows computed in ``dtype``.

    A D-term dot product summed in any order errs by at most gamma_D sum_k |q_k r_k|
    (Higham, Accuracy and Stability of Numerical Algorithms, eq 3.5), and
    sum_k |q_k r_k| <= ||q|| ||r|| by Cauchy-Schwarz.
    """
    return _gamma(dim, _F32_UNIT if dtype == torch.float32 else _F64_UNIT) * _norm_bound(dim) ** 2


def _tie_window(dim: int, dtype: torch.dtype) -> float:
    """Score gap beyond which two entries of one score row are ordered as their exact values.

    Each entry is within :func:`_score_error` of its exact value, so entries
    more than twice that apart are ordered correctly; the slack on top covers
    the rounding of ``target -+ window`` itself (half an ulp of a number below 2).
    """
    slack = 2.0**-22 if dtype == torch.float32 else 2.0**-50
    return 2.0 * _score_error(dim, dtype) + slack


def _scores_float64(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """The (chunk, U) score block in float64, converting the gallery a slice at a time."""
    scores = torch.empty((queries.shape[0], gallery.shape[0]), dtype=torch.float64)
    q64 = queries.double()
    step = max(1, _PAIR_BATCH_ELEMENTS // queries.shape[1])
    for start in range(0, gallery.shape[0], step):
        scores[:, start : start + step] = torch.mm(q64, gallery[start : start + step].double().t())
    return scores


def _exact_signs(
    queries: torch.Tensor, gallery: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """sign(<q_r, g_c> - <q_r, g_t[r]>) computed exactly for each undecided pair (row r, column c).

    ``targets`` holds one gallery row per query row. Three steps, each only for
    what the previous one leaves undecided:

    1. both scores in float64, each within :func:`_score_error` of its exact value;
    2. sum_k q_k (g_ck - g_tk) in float64, within 2 gamma_{D+2} sum_k |q_k (g_ck - g_tk)|
       (two roundings per term, D - 1 additions): exactly 0 with bound 0 when
       the two rows agree wherever q is non-zero;
    3. ``math.fsum`` of the 2D products: a product of two float32 numbers is
       exact in float64 and fsum rounds their sum correctly, so its sign is exact.
    """
    dim = queries.shape[1]
    q64 = queries.double()
    target_scores = torch.einsum("id,id->i", q64, gallery[targets].double())
    first_bound = _tie_window(dim, torch.float64)  # also covers rounding the difference
    signs = torch.empty(rows.shape[0], dtype=torch.int64)
    step = max(1, _PAIR_BATCH_ELEMENTS // dim)
    for start in range(0, rows.shape[0], step):
        r, c = rows[start : start + step], cols[start : start + step]
        value = torch.einsum("pd,pd->p", q64[r], gallery[c].double()).sub_(target_scores[r])
        part = torch.sign(value).long()
        unsure = (value.abs() <= first_bound).nonzero()[:, 0]
        if unsure.numel():
            part[unsure] = _difference_signs(q64, gallery, r[unsure], c[unsure], targets[r[unsure]])
        signs[start : start + step] = part
    return signs


def _difference_signs(
    q64: torch.Tensor, gallery: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Steps 2 and 3 of :func:`_exact_signs`, for pairs whose scores are within float64 noise."""
    terms = q64[rows].mul_(gallery[cols].double().sub_(gallery[targets].double()))
    value = terms.sum(dim=1)
    bound = terms.abs_().sum(dim=1).mul_(2.0 * _gamma(q64.shape[1] + 2, _F64_UNIT))
    signs = torch.sign(value).long()
    for i in ((value.abs() <= bound) & (bound > 0)).nonzero()[:, 0].tolist():
        signs[i] = _fsum_sign(q64[rows[i]], gallery[cols[i]], gallery[targets[i]])
    return signs


def _fsum_sign(query: torch.Tensor, candidate: torch.Tensor, target: torch.Tensor) -> int:
    """Exact sign of <query, candidate> - <query, target> for float32-valued vectors."""
    q = query.double()
    total = math.fsum(torch.cat([q * candidate.double(), -(q * target.double())]).tolist())
    return (total > 0) - (total < 0)


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
        self, scores: torch.Tensor, queries: torch.Tensor, gallery: _Gallery, workspace: torch.Tensor
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
        window = _tie_window(self.queries.shape[1], self.scores.dtype)
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
            self.scores = _scores_float64(self.queries, self.gallery.vectors)
            swept = self._sweep(*self.bounds(targets))
            assert swept is not None  # a float64 block is never sent back
        above, rows, cols = swept
        other = cols != targets[rows]
        rows, cols = rows[other], cols[other]
        return _Comparison(above, rows, cols, _exact_signs(self.queries, self.gallery.vectors, rows, cols, targets))

    def exact_ranks(self, targets: torch.Tensor) -> torch.Tensor:
        """Per row, the number of references scoring strictly above the target: the rank."""
        comparison = self.compare(targets)
        higher = comparison.signs > 0
        cols = comparison.cols[higher]
        weights = torch.ones_like(cols) if self.gallery.counts is None else self.gallery.counts[cols]
        return comparison.above.index_add(0, comparison.rows[higher], weights)

    def ranks_for(self, targets: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
        """Per row, a number r with (r < k) == (rank < k) for every k in ``ks``.

        Recall needs no more than that, and for most rows one sweep settles it:
        the rank lies between the count certainly above the target and the
        count not certainly below it, and only rows where some k falls in
        between are ranked exactly.
        """
        lower = self.count_above(self.bounds(targets)[1])
        open_rows = (lower < ks.max()).nonzero()[:, 0]
        if open_rows.numel() == 0:
            return lower
        part, part_targets = self.subset(open_rows), targets[open_rows]
        not_below = part.count_above(part.bounds(part_targets)[0])  # the target itself included
        upper = not_below - (1 if self.gallery.counts is None else self.gallery.counts[part_targets])
        part_lower = lower[open_rows]
        unsettled = ((part_lower[:, None] < ks) & (ks <= upper[:, None])).any(dim=1).nonzero()[:, 0]
        if unsettled.numel():
            lower[open_rows[unsettled]] = part.subset(unsettled).exact_ranks(part_targets[unsettled])
        return lower

    def is_top1(self, refs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Whether reference ``refs[i]`` is row i's top-1 (highest score, ties to the lowest index), for ``rows``."""
        targets = self.gallery.inverse[refs]
        result = torch.zeros(self.scores.shape[0], dtype=torch.bool)
        candidates = (rows & (self.gallery.first[targets] == refs)).nonzero()[:, 0]
        if candidates.numel():
            part = self.subset(candidates)
            unbeaten = part.count_above(part.bounds(targets[candidates])[1]) == 0
            candidates = candidates[unbeaten]
        if candidates.numel():
            comparison = self.subset(candidates).compare(targets[candidates])
            cols, signs = comparison.cols, comparison.signs
            wins = (signs > 0) | ((signs == 0) & (self.gallery.first[cols] < refs[candidates][comparison.rows]))
            top1 = torch.ones(candidates.shape[0], dtype=torch.bool)
            top1[comparison.rows[wins]] = False
            result[candidates] = top1
        return result


def _best_correct(queries: torch.Tensor, gallery: _Gallery, targets: torch.Tensor, also: torch.Tensor) -> torch.Tensor:
    """Per query, the highest-scoring of its positive and its also-correct references (gallery rows).

    A running maximum whose every comparison is exact (:func:`_exact_signs`),
    so the rank of the result counts exactly the wrong references above all
    correct ones.
    """
    best = targets.clone()
    for refs in also.t():
        rows = (refs >= 0).nonzero()[:, 0]
        if rows.numel() == 0:
            continue
        candidates = gallery.inverse[refs[rows]]
        signs = _exact_signs(queries, gallery.vectors, rows, candidates, best)
        better = rows[signs > 0]
        best[better] = candidates[signs > 0]
    return best


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


def _default_chunk(columns: int) -> int:
    """Queries per block so that the (chunk, columns) float32 block is about 256 MiB."""
    return max(1, SCORE_BLOCK_ELEMENTS // columns)


def _evaluate(
    query: ArrayLike,
    reference: ArrayLike,
    positives: ArrayLike,
    semi_positives: ArrayLike | None,
    chunk_size: int | None,
    ks: Sequence[int] | None,
    also_correct: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Ranks of all queries, their top-1 hits (with semi-positives only) and M.

    With ``ks``, a rank is only exact as far as ``rank < k`` needs for those k
    and the R@1% k (see :meth:`_ChunkScores.ranks_for`); without, every rank is exact.
    """
    queries = _as_matrix(query, "query", torch.float32)
    gallery = _build_gallery(reference)
    if queries.shape[1] != gallery.vectors.shape[1]:
        raise ValueError(
            f"query and reference dimensions differ: query is (N, {queries.shape[1]}), "
            f"reference is (M, {gallery.vectors.shape[1]})"
        )
    _normalize_rows_(queries, "query")
    count = queries.shape[0]
    pos = _as_index_vector(positives, "positives", count, gallery.size)
    semi = None if semi_positives is None else _as_index_table(semi_positives, count, gallery.size)
    also = None if also_correct is None else _as_index_table(also_correct, count, gallery.size, "also_correct")
    distinct = gallery.vectors.shape[0]
    chunk = _default_chunk(distinct) if chunk_size is None else _check_positive_int(chunk_size, "chunk_size")
    thresholds = None
    if ks is not None:
        needed = set(ks) | {max(1, gallery.size // 100)} | ({1} if semi is not None else set())
        thresholds = torch.tensor(sorted(needed))

    rank = torch.empty(count, dtype=torch.int64)
    hits = None if semi is None else torch.empty(count, dtype=torch.bool)
    block = torch.empty((min(chunk, count), distinct), dtype=torch.float32)
    workspace = torch.empty(max(_TILE_ELEMENTS, min(chunk, count) * 1024), dtype=torch.float32)
    with torch.no_grad(), _ieee_float32_matmul():
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            scores = torch.mm(queries[start:stop], gallery.vectors.t(), out=block[: stop - start])
            chunk_scores = _ChunkScores(scores, queries[start:stop], gallery, workspace)
            targets = gallery.inverse[pos[start:stop]]
            if also is not None:
                targets = _best_correct(queries[start:stop], gallery, targets, also[start:stop])
            if thresholds is None:
                rank[start:stop] = chunk_scores.exact_ranks(targets)
            else:
                rank[start:stop] = chunk_scores.ranks_for(targets, thresholds)
            if semi is None:
                continue
            hit = rank[start:stop] == 0  # a positive tied with the best score is a hit
            for refs in semi[start:stop].t():
                hit |= chunk_scores.is_top1(refs.clamp(min=0), (refs >= 0) & ~hit)
            hits[start:stop] = hit
    return rank.numpy(), None if hits is None else hits.numpy(), gallery.size


# ------------------------------------------------------------------------- public


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
    return _evaluate(query, reference, positives, None, chunk_size, None)[0]


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
    ks = [_check_positive_int(k, "each k in ks") for k in ks]
    rank, hits, size = _evaluate(query, reference, positives, semi_positives, chunk_size, ks, also_correct)
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
    chunk = max(1, 2**24 // count) if chunk_size is None else _check_positive_int(chunk_size, "chunk_size")
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
