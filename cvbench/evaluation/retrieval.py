"""Top-k retrieval of references for each query, exact or approximate (faiss).

Embeddings are compared by cosine similarity, as in :mod:`cvbench.metrics`:
both sides are validated and L2-normalised in float32 by
:func:`cvbench.metrics.as_unit_rows`, then searched by inner product with
faiss. Three indexes, named by an :class:`IndexSpec`:

* ``exact`` (the default): ``IndexFlatIP``, an exhaustive scan.
* ``hnsw``: an HNSW graph (``IndexHNSWFlat``), options ``neighbors`` (links
  per node, faiss's M, default 32), ``ef_construction`` (40) and ``ef_search``
  (64; a search of k uses ``max(ef_search, k)`` candidates).
* ``ivf``: an inverted file (``IndexIVFFlat``): k-means cuts the references into
  ``nlist`` lists (default about 4 sqrt(M), see :meth:`IndexSpec.resolve`)
  and a query scans the ``nprobe`` lists (default 16) whose centroids are
  nearest. With ``nprobe = nlist`` every list is scanned and the search is exact.

The approximate indexes are for city-scale galleries, where an exhaustive scan
per query is too slow and missing a few true neighbours is acceptable;
:func:`approximate_recall` measures R@k through one and how much the index
itself misses. faiss keeps its default thread count.

The order of references with exactly equal scores is whatever faiss returns;
for exact tie semantics use :func:`cvbench.metrics.ranks`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import faiss
import numpy as np

from .inputs import ArrayLike, as_index_vector, as_unit_rows
from .metrics import one_percent_k

__all__ = [
    "INDEX_KINDS", "IndexSpec", "approximate_recall", "build_index", "configure_search", "parse_index_options", "topk",
]

QUERY_CHUNK = 4096
"""Queries searched per faiss call, so the (chunk, k) results and faiss's scratch stay small."""

RESULT_ELEMENTS = 2**24
"""At most this many (query, neighbour) results per faiss call (about 200 MiB of scores and indices)."""

INDEX_KINDS = ("exact", "hnsw", "ivf")

_DEFAULT_OPTIONS: dict[str, dict[str, int | None]] = {
    "exact": {},
    "hnsw": {"neighbors": 32, "ef_construction": 40, "ef_search": 64},
    "ivf": {"nlist": None, "nprobe": 16},  # nlist None: chosen from the gallery size
}

IVF_MIN_TRAIN_PER_LIST = 39
"""faiss warns below 39 training points per list: k-means centroids get noisy."""

IVF_MAX_TRAIN_PER_LIST = 256
"""Training sample cap per list (faiss's own cap): more points barely move the centroids."""

INDEX_RECALL_K = 10
"""``index_recall@10`` compares the exact and approximate top 10."""


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------ the index choice


@dataclass(frozen=True)
class IndexSpec:
    """Which faiss index to search, and its options (validated; missing options get their defaults).

    ``IndexSpec("ivf", {"nprobe": 32})`` has ``options == {"nlist": None,
    "nprobe": 32}``; ``nlist`` None is filled in by :meth:`resolve` once the
    gallery size is known. A bad kind, an unknown option or a value that is
    not a positive integer raises ValueError naming it and the valid ones.
    """

    kind: str = "exact"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"index must be one of {', '.join(INDEX_KINDS)}, got {self.kind!r}")
        if not isinstance(self.options, Mapping):
            raise ValueError(f"index options must be a mapping of option names to integers, got {self.options!r}")
        defaults = _DEFAULT_OPTIONS[self.kind]
        unknown = sorted(set(self.options) - set(defaults))
        if unknown:
            valid = f"valid options: {', '.join(defaults)}" if defaults else "it takes no options"
            raise ValueError(f"unknown option {unknown[0]!r} for the {self.kind} index; {valid}")
        options = dict(defaults)
        for name, value in self.options.items():
            options[name] = None if value is None and defaults[name] is None else _check_count(value, name)
        object.__setattr__(self, "options", options)

    def resolve(self, num_references: int) -> IndexSpec:
        """This spec for a gallery of ``num_references``: IVF's ``nlist`` filled in, ``nprobe`` at most ``nlist``.

        The default ``nlist`` is round(4 sqrt(M)), lowered to M // 39 (at least
        1) so the k-means training never has fewer than the 39 points per list
        faiss asks for; from about 24,000 references on it is 4 sqrt(M).
        An ``nlist`` above M raises ValueError: every list needs a training point.
        """
        if self.kind != "ivf":
            return self
        nlist = self.options["nlist"]
        if nlist is None:
            nlist = max(1, min(round(4 * math.sqrt(num_references)), num_references // IVF_MIN_TRAIN_PER_LIST))
        elif nlist > num_references:
            raise ValueError(
                f"nlist = {nlist} exceeds the {num_references} references: IVF needs at least one reference "
                "per list to train on; lower nlist"
            )
        return IndexSpec("ivf", {"nlist": nlist, "nprobe": min(self.options["nprobe"], nlist)})


def _as_spec(index: IndexSpec | str) -> IndexSpec:
    return index if isinstance(index, IndexSpec) else IndexSpec(index)


def parse_index_options(items: Iterable[str]) -> dict[str, int]:
    """``["nprobe=32", "nlist=1024"]`` -> ``{"nprobe": 32, "nlist": 1024}`` (the CLI's ``--index-option``).

    Values are integers; which keys are valid is checked by :class:`IndexSpec`.
    """
    options: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"index option {item!r} must be KEY=VALUE, e.g. nprobe=32")
        try:
            options[key] = int(value)
        except ValueError:
            raise ValueError(f"index option {key} must be an integer, got {value!r}") from None
    return options


# ----------------------------------------------------------------- building and searching


def build_index(reference: np.ndarray, index: IndexSpec | str = "exact", seed: int = 0) -> faiss.Index:
    """An inner-product faiss index over ``reference`` (M, D) float32 unit rows.

    IVF is trained (spherical k-means, as faiss does for inner product) on a
    sample of at most 256 nlist references drawn with ``seed``, so the same
    inputs give the same lists; fewer than 39 nlist training points warns.
    Search settings (``ef_search``, ``nprobe``) are applied by the search.
    """
    spec = _as_spec(index).resolve(reference.shape[0])
    count, dim = reference.shape
    if spec.kind == "hnsw":
        built = faiss.IndexHNSWFlat(dim, spec.options["neighbors"], faiss.METRIC_INNER_PRODUCT)
        built.hnsw.efConstruction = spec.options["ef_construction"]
    elif spec.kind == "ivf":
        nlist = spec.options["nlist"]
        built = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        built.cp.seed = seed
        built.cp.spherical = True  # unit centroids: assignment by inner product is by cosine
        built.cp.min_points_per_centroid = 1  # faiss would print its warning to stderr; we warn below
        size = min(count, IVF_MAX_TRAIN_PER_LIST * nlist)
        if size < IVF_MIN_TRAIN_PER_LIST * nlist:
            warnings.warn(
                f"IVF trains {nlist} lists on only {size} references; faiss recommends at least "
                f"{IVF_MIN_TRAIN_PER_LIST * nlist} (39 per list): lower nlist for better lists",
                stacklevel=2,
            )
        rows = np.arange(count)
        if size < count:
            rows = np.sort(np.random.default_rng(seed).choice(count, size, replace=False))
        built.train(np.ascontiguousarray(reference[rows]))
    else:
        built = faiss.IndexFlatIP(dim)
    built.add(reference)
    return built


def configure_search(built: faiss.Index, index: IndexSpec | str, k: int) -> None:
    """Set the search-time options of ``built`` (from :func:`build_index`) for a top-``k`` search.

    HNSW searches ``max(ef_search, k)`` candidates; IVF scans ``nprobe`` lists.
    """
    spec = _as_spec(index).resolve(built.ntotal)
    if spec.kind == "hnsw":
        built.hnsw.efSearch = max(spec.options["ef_search"], k)
    elif spec.kind == "ivf":
        built.nprobe = spec.options["nprobe"]


def _chunks(count: int, k: int, chunk_size: int) -> Iterable[slice]:
    """Query slices of at most ``chunk_size`` rows and at most RESULT_ELEMENTS results."""
    step = max(1, min(chunk_size, RESULT_ELEMENTS // k))
    return (slice(start, min(start + step, count)) for start in range(0, count, step))


def _units(query: ArrayLike, reference: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    queries = as_unit_rows(query, "query").numpy()
    references = as_unit_rows(reference, "reference").numpy()
    if queries.shape[1] != references.shape[1]:
        raise ValueError(
            f"query and reference dimensions differ: query is (N, {queries.shape[1]}), "
            f"reference is (M, {references.shape[1]})"
        )
    return queries, references


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
    index: IndexSpec | str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` references most similar to each query: ``(scores (N, k) float32, indices (N, k) int64)``.

    ``query`` (N, D) and ``reference`` (M, D) are embeddings (numpy or torch,
    any float dtype); scores are cosine similarities, best first, and k <= M.
    ``index`` picks the faiss index (an :class:`IndexSpec`, or a kind with
    default options; ``seed`` draws IVF's training sample). Without it,
    ``approximate=True`` means HNSW with ``neighbors`` links per node, built
    with ``ef_construction`` and searched with ``max(ef_search, k)``
    candidates (raise them for higher recall), and the default is exact. A
    query for which the index finds fewer than k references raises
    RuntimeError rather than returning padding.
    """
    queries, references = _units(query, reference)
    k = _check_count(k, "k")
    if k > references.shape[0]:
        raise ValueError(f"k = {k} exceeds the {references.shape[0]} references")
    chunk = _check_count(chunk_size, "chunk_size")
    if index is not None and approximate:
        raise ValueError("pass either approximate=True (HNSW) or index=..., not both")
    if index is None:
        options = {"neighbors": neighbors, "ef_construction": ef_construction, "ef_search": ef_search}
        index = IndexSpec("hnsw", options) if approximate else IndexSpec("exact")
    spec = _as_spec(index).resolve(references.shape[0])
    built = build_index(references, spec, seed)
    configure_search(built, spec, k)

    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    for rows in _chunks(queries.shape[0], k, chunk):
        scores[rows], indices[rows] = built.search(queries[rows], k)
    if (indices < 0).any():
        row = int(np.flatnonzero((indices < 0).any(axis=1))[0])
        remedy = "raise nprobe" if spec.kind == "ivf" else "raise ef_search or neighbors"
        name = "IVF" if spec.kind == "ivf" else "HNSW"
        raise RuntimeError(f"{name} found fewer than {k} references for query {row}; {remedy}")
    return scores, indices


# ------------------------------------------------------------------- recall through an index


def approximate_recall(
    query: ArrayLike,
    reference: ArrayLike,
    positives: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    percent: bool = True,
    index: IndexSpec | str = "hnsw",
    sample: int = 1000,
    seed: int = 0,
    *,
    semi_positives: ArrayLike | None = None,
    also_correct: ArrayLike | None = None,
    chunk_size: int = QUERY_CHUNK,
    one_percent: str = "floor+1",
) -> dict[str, dict[str, Any]]:
    """R@k through an approximate faiss index, and how much of the exact top-k the index finds.

    Returns ``{"metrics": {"R@1": .., "R@5": .., "R@10": .., "R@1%": ..},
    "index": {"kind", "options", "index_recall@1", "index_recall@10", "sample"}}``.

    **metrics** have the keys and meaning of :func:`cvbench.metrics.recall`
    (in percent, or fractions with ``percent=False``; R@1%'s k follows
    ``one_percent``), but are read from each query's approximate top K,
    K the largest k needed: query i counts at k when its positive is among
    the references the index returned and fewer than k of them score strictly
    higher (ties go to the positive: the optimistic ties convention). A positive the index
    did not return counts as missed, and a reference the index missed that
    outscores the positive does not count against it. With the exact index
    and no exact ties this equals ``recall``.
    Only ``positives`` (one reference index per query) count: semi-positives
    (VIGOR's hit rate) and also-correct references (CVACT_test) are not
    supported here, and passing them raises ValueError.

    **index_recall** measures the index alone, on a sample of at most
    ``sample`` queries drawn with ``seed``: ``index_recall@1`` is the fraction
    whose exact top-1 reference (brute-force inner product, as ``IndexFlatIP``)
    is also the approximate top-1, ``index_recall@10`` the mean fraction of the
    exact top 10 found in the approximate top 10 (fractions, whatever
    ``percent``). References are compared by index, so exact ties (duplicate
    references) make ``index_recall@1`` slightly pessimistic: the index may
    return the other one of a tied pair.

    Cost: building the index, one approximate top-K search per query (R@1%
    needs K = M // 100, the dominant cost for a large gallery; memory stays
    bounded by searching in chunks) and one exhaustive search for the
    sample only. ``seed`` also draws IVF's training sample.
    """
    if semi_positives is not None or also_correct is not None:
        raise ValueError(
            "approximate_recall counts only the positive of each query: semi_positives and also_correct "
            "are not supported; use cvbench.metrics.recall (exact) for them"
        )
    queries, references = _units(query, reference)
    count, size = queries.shape[0], references.shape[0]
    targets = as_index_vector(positives, "positives", count, size).numpy()
    ks = [_check_count(k, "each k in ks") for k in ks]
    sample = _check_count(sample, "sample")
    chunk = _check_count(chunk_size, "chunk_size")
    spec = _as_spec(index).resolve(size)
    one_percent = one_percent_k(size, one_percent)
    top = min(max([*ks, one_percent, INDEX_RECALL_K]), size)  # one search serves the metrics and the sample
    compare = min(INDEX_RECALL_K, size)

    built = build_index(references, spec, seed)
    configure_search(built, spec, top)
    picked = np.arange(count)
    if count > sample:
        picked = np.sort(np.random.default_rng(seed).choice(count, sample, replace=False))
    is_picked = np.zeros(count, dtype=bool)
    is_picked[picked] = True
    rank = np.full(count, size, dtype=np.int64)  # size: the index did not return the positive
    approximate_head = np.empty((len(picked), compare), dtype=np.int64)
    for rows in _chunks(count, top, chunk):
        scores, indices = built.search(queries[rows], top)
        hit = indices == targets[rows, None]
        found = hit.any(axis=1)
        positive_score = scores[np.arange(len(scores)), hit.argmax(axis=1)]
        above = ((scores > positive_score[:, None]) & (indices >= 0)).sum(axis=1)
        rank[rows] = np.where(found, above, size)
        mine = is_picked[rows]
        start = np.count_nonzero(is_picked[: rows.start])
        approximate_head[start : start + np.count_nonzero(mine)] = indices[mine, :compare]

    scale = 100.0 if percent else 1.0
    result = {f"R@{k}": float(scale * np.mean(rank < k)) for k in ks}
    result["R@1%"] = float(scale * np.mean(rank < one_percent))
    _, exact_head = faiss.knn(queries[picked], references, compare, faiss.METRIC_INNER_PRODUCT)
    overlap = [len(set(a) & set(b)) / compare for a, b in zip(exact_head.tolist(), approximate_head.tolist())]
    info = {
        "kind": spec.kind,
        "options": dict(spec.options),
        "index_recall@1": float(np.mean(exact_head[:, 0] == approximate_head[:, 0])),
        f"index_recall@{INDEX_RECALL_K}": float(np.mean(overlap)),
        "sample": len(picked),
    }
    return {"metrics": result, "index": info}
