"""City-scale retrieval: faiss HNSW (approximate) against exact search on the same embeddings.

Seeded unit embeddings with a known true match: reference j is a random
direction, query i a noisy copy of reference ``positives[i]`` (noise
``--noise`` per coordinate, so exact R@1 is high but not perfect). For the
exact index (``cvbench.retrieval.topk``) and HNSW at each ``--ef-search``,
reports the time of a topk call (HNSW: building the graph and searching it), the overlap of the approximate top-k with
the exact top-k (the recall of the index itself), and R@1 / R@k of the true
match under each.

Usage::

    python benchmarks/perf/approximate.py --queries 10000 --references 200000 --dim 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cvbench.retrieval import topk


def embeddings(queries: int, references: int, dim: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((references, dim), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    positives = rng.integers(0, references, size=queries)
    query = gallery[positives] + noise * rng.standard_normal((queries, dim), dtype=np.float32)
    return query, gallery, positives


def measure(query, gallery, positives, k: int, **options) -> tuple[dict, np.ndarray]:
    start = time.perf_counter()
    _, found = topk(query, gallery, k, **options)
    seconds = time.perf_counter() - start
    hit = found == positives[:, None]
    return {"seconds": seconds, "R@1": 100 * hit[:, 0].mean(), f"R@{k}": 100 * hit.any(axis=1).mean()}, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--references", type=int, default=200000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.09)
    parser.add_argument("--neighbors", type=int, default=32)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    query, gallery, positives = embeddings(args.queries, args.references, args.dim, args.noise, args.seed)
    rows = {}
    exact, exact_found = measure(query, gallery, positives, args.k)
    rows["exact"] = {**exact, "overlap_with_exact": 100.0}
    for ef in args.ef_search:
        result, found = measure(query, gallery, positives, args.k, approximate=True, neighbors=args.neighbors,
                                ef_search=ef)
        overlap = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found, exact_found)])
        rows[f"hnsw ef_search={ef}"] = {**result, "overlap_with_exact": 100 * overlap}
    print(f"{args.queries} queries x {args.references} references x {args.dim}, top {args.k}:")
    for name, row in rows.items():
        print(f"  {name:22s} {row['seconds']:8.1f} s  top-{args.k} overlap with exact {row['overlap_with_exact']:6.2f}%"
              f"  R@1 {row['R@1']:6.2f}  R@{args.k} {row[f'R@{args.k}']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
