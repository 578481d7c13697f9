"""Exact comparisons of cosine scores: the deduplicated gallery, the rounding-error bounds, exact signs.

The pieces :mod:`cvbench.evaluation.exact_ranking` builds its exact ranks from. A
float32 score is within :func:`score_error` of the exact inner product of
the float32 unit vectors (Higham's gamma_D bound); two scores closer than
:func:`tie_window` are compared by :func:`exact_signs`, in float64 with its
own bound and then with ``math.fsum``, which is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .inputs import ArrayLike, as_matrix, normalize_rows_

_F32_UNIT = 2.0**-24  # unit roundoff of float32
_F64_UNIT = 2.0**-53  # unit roundoff of float64
_PAIR_BATCH_ELEMENTS = 2**22  # float64 elements per batch of exact comparisons (32 MiB)


# -------------------------------------------------------------------------- gallery

@dataclass(frozen=True)
class Gallery:
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


def build_gallery(reference: ArrayLike) -> Gallery:
    """Validate, merge duplicate rows of and normalise the references.

    Duplicates are merged before normalising so that identical inputs get
    bit-identical unit vectors.
    """
    raw = as_matrix(reference, "reference", torch.float32)
    size = raw.shape[0]
    identity = torch.arange(size)
    if not _may_repeat_rows(raw):
        return Gallery(normalize_rows_(raw, "reference"), identity, None, identity, size)
    unique, inverse, counts = torch.unique(raw, dim=0, return_inverse=True, return_counts=True)
    if unique.shape[0] == size:
        return Gallery(normalize_rows_(raw, "reference"), identity, None, identity, size)
    del raw
    first = torch.full((unique.shape[0],), size, dtype=torch.int64)
    first.scatter_reduce_(0, inverse, identity, reduce="amin")
    vectors = normalize_rows_(unique.contiguous(), "reference", row_ids=first)
    return Gallery(vectors, inverse, counts, first, size)


def queries_and_gallery(query: ArrayLike, reference: ArrayLike) -> tuple[torch.Tensor, Gallery]:
    """The queries as float32 unit rows and the references as a :class:`Gallery`, checked to share D."""
    queries = as_matrix(query, "query", torch.float32)
    gallery = build_gallery(reference)
    if queries.shape[1] != gallery.vectors.shape[1]:
        raise ValueError(f"query and reference dimensions differ: query is (N, {queries.shape[1]}), "
                         f"reference is (M, {gallery.vectors.shape[1]})")
    return normalize_rows_(queries, "query"), gallery


# ------------------------------------------------------------------- exact scoring


def _gamma(n: int, unit: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): relative error bound of an n-term floating-point dot product."""
    return n * unit / (1.0 - n * unit)


def _norm_bound(dim: int) -> float:
    """Upper bound on the norm of a row normalised in float32 (D squares summed, a root, D divisions)."""
    return 1.0 + 2.0 * _gamma(dim + 2, _F32_UNIT)


def score_error(dim: int, dtype: torch.dtype) -> float:
    """Bound on |computed - exact| for a score of two normalised rows computed in ``dtype``.

    A D-term dot product summed in any order errs by at most gamma_D sum_k |q_k r_k|
    (Higham, Accuracy and Stability of Numerical Algorithms, eq 3.5), and
    sum_k |q_k r_k| <= ||q|| ||r|| by Cauchy-Schwarz.
    """
    return _gamma(dim, _F32_UNIT if dtype == torch.float32 else _F64_UNIT) * _norm_bound(dim) ** 2


def tie_window(dim: int, dtype: torch.dtype) -> float:
    """Score gap beyond which two entries of one score row are ordered as their exact values.

    Each entry is within :func:`score_error` of its exact value, so entries
    more than twice that apart are ordered correctly; the slack on top covers
    the rounding of ``target -+ window`` itself (half an ulp of a number below 2).
    """
    slack = 2.0**-22 if dtype == torch.float32 else 2.0**-50
    return 2.0 * score_error(dim, dtype) + slack


def exact_signs(
    queries: torch.Tensor, gallery: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """sign(<q_r, g_c> - <q_r, g_t[r]>) computed exactly for each undecided pair (row r, column c).

    ``targets`` holds one gallery row per query row. Three steps, each only for
    what the previous one leaves undecided:

    1. both scores in float64, each within :func:`score_error` of its exact value;
    2. sum_k q_k (g_ck - g_tk) in float64, within 2 gamma_{D+2} sum_k |q_k (g_ck - g_tk)|
       (two roundings per term, D - 1 additions): exactly 0 with bound 0 when
       the two rows agree wherever q is non-zero;
    3. ``math.fsum`` of the 2D products: a product of two float32 numbers is
       exact in float64 and fsum rounds their sum correctly, so its sign is exact.
    """
    dim = queries.shape[1]
    q64 = queries.double()
    target_scores = torch.einsum("id,id->i", q64, gallery[targets].double())
    first_bound = tie_window(dim, torch.float64)  # also covers rounding the difference
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
    """Steps 2 and 3 of :func:`exact_signs`, for pairs whose scores are within float64 noise."""
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
