"""Top-k retrieval of references for each query, for predictions and heatmaps.

Embeddings are compared by cosine similarity, as in :mod:`cvbench.metrics`:
both sides are validated and L2-normalised in float32 by
:func:`cvbench.metrics.as_unit_rows`, then searched by inner product with
faiss. The exact index (``IndexFlatIP``) is the default; ``approximate=True``
builds an HNSW graph (``IndexHNSWFlat``) for city-scale galleries, where an
exhaustive scan per query is too slow and missing a few true neighbours is
acceptable. faiss keeps its default thread count.

The order of references with exactly equal scores is whatever faiss returns;
for exact tie semantics use :func:`cvbench.metrics.ranks`.
"""

from __future__ import annotations

import faiss
import numpy as np

from .metrics import ArrayLike, as_unit_rows

__all__ = ["topk"]

QUERY_CHUNK = 4096
"""Queries searched per faiss call, so the (chunk, k) results and faiss's scratch stay small."""


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _build_index(reference: np.ndarray, approximate: bool, neighbors: int, ef_construction: int) -> faiss.Index:
    """An inner-product index over ``reference`` (M, D) float32 unit rows: exact, or HNSW."""
    dim = reference.shape[1]
    if approximate:
        index = faiss.IndexHNSWFlat(dim, neighbors, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(reference)
    return index


def topk(
    query: ArrayLike,
    reference: ArrayLike,
    k: int,
    *,
    approximate: bool = False,
    neighbors: int = 32,
    ef_construction: int = 40,
    ef_search: int = 64,
    chunk_size: int = QUERY_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` references most similar to each query: ``(scores (N, k) float32, indices (N, k) int64)``.

    ``query`` (N, D) and ``reference`` (M, D) are embeddings (numpy or torch,
    any float dtype); scores are cosine similarities, best first, and k <= M.
    ``approximate=True`` searches an HNSW graph with ``neighbors`` links per
    node, built with ``ef_construction`` and searched with
    ``max(ef_search, k)`` candidates (raise them for higher recall). A query
    for which HNSW finds fewer than k references raises RuntimeError rather
    than returning padding.
    """
    queries = as_unit_rows(query, "query").numpy()
    references = as_unit_rows(reference, "reference").numpy()
    if queries.shape[1] != references.shape[1]:
        raise ValueError(
            f"query and reference dimensions differ: query is (N, {queries.shape[1]}), "
            f"reference is (M, {references.shape[1]})"
        )
    k = _check_count(k, "k")
    if k > references.shape[0]:
        raise ValueError(f"k = {k} exceeds the {references.shape[0]} references")
    chunk = _check_count(chunk_size, "chunk_size")
    index = _build_index(
        references, approximate, _check_count(neighbors, "neighbors"), _check_count(ef_construction, "ef_construction")
    )
    if approximate:
        index.hnsw.efSearch = max(_check_count(ef_search, "ef_search"), k)

    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        scores[start : start + chunk], indices[start : start + chunk] = index.search(queries[start : start + chunk], k)
    if (indices < 0).any():
        row = int(np.flatnonzero((indices < 0).any(axis=1))[0])
        raise RuntimeError(f"HNSW found fewer than {k} references for query {row}; raise ef_search or neighbors")
    return scores, indices
