"""City-scale retrieval: faiss HNSW and IVF (approximate) against exact search on the same embeddings.

Seeded unit embeddings with a known true match: reference j is a random
direction, query i a noisy copy of reference ``positives[i]`` (noise
``--noise`` per coordinate, so exact R@1 is high but not perfect). For the
exact index, HNSW at each ``--ef-search`` and IVF with ``--nlist`` lists at
each ``--nprobe``, reports the time to build the index and to search it for
the top k (inputs are normalised once, outside the timings), the agreement of
the approximate top-1 with the exact top-1 and the overlap of the top k (the
recall of the index itself, as ``index_recall`` in
:func:`cvbench.evaluation.retrieval.approximate_recall`), and R@1 / R@k of the true match
under each. IVF builds its lists once and is searched at each nprobe.

Usage::

    python benchmarks/perf/approximate.py --queries 10000 --references 200000 --dim 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from cvbench.metrics import as_unit_rows

from cvbench.evaluation.retrieval import IndexSpec, build_index, configure_search


def embeddings(queries: int, references: int, dim: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((references, dim), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    positives = rng.integers(0, references, size=queries)
    query = gallery[positives] + noise * rng.standard_normal((queries, dim), dtype=np.float32)
    return query, gallery, positives


def build(gallery: np.ndarray, spec: IndexSpec, seed: int):
    start = time.perf_counter()
    built = build_index(gallery, spec, seed)
    return built, time.perf_counter() - start


def search(built, spec: IndexSpec, query: np.ndarray, positives: np.ndarray, k: int) -> tuple[dict, np.ndarray]:
    configure_search(built, spec, k)
    start = time.perf_counter()
    _, found = built.search(query, k)
    seconds = time.perf_counter() - start
    hit = found == positives[:, None]
    return {"search_s": seconds, "R@1": 100 * hit[:, 0].mean(), f"R@{k}": 100 * hit.any(axis=1).mean()}, found


def agreement(found: np.ndarray, exact_found: np.ndarray, k: int) -> dict:
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(found.tolist(), exact_found.tolist())])
    return {"top1_agreement": 100 * np.mean(found[:, 0] == exact_found[:, 0]), "overlap_with_exact": 100 * overlap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--references", type=int, default=200000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.09)
    parser.add_argument("--neighbors", type=int, default=32)
    parser.add_argument("--ef-search", type=int, nargs="*", default=[16, 64, 256], help="HNSW rows (none: skip HNSW)")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 32, 128], help="IVF rows (none: skip IVF)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    query, gallery, positives = embeddings(args.queries, args.references, args.dim, args.noise, args.seed)
    query, gallery = as_unit_rows(query, "query").numpy(), as_unit_rows(gallery, "reference").numpy()

    rows = {}
    built, seconds = build(gallery, IndexSpec("exact"), args.seed)
    exact, exact_found = search(built, IndexSpec("exact"), query, positives, args.k)
    rows["exact"] = {"build_s": seconds, **exact, **agreement(exact_found, exact_found, args.k)}
    del built
    for kind, base, knob, values in (("hnsw", {"neighbors": args.neighbors}, "ef_search", args.ef_search),
                                     ("ivf", {"nlist": args.nlist}, "nprobe", args.nprobe)):
        if not values:
            continue
        built, seconds = build(gallery, IndexSpec(kind, base), args.seed)  # once; searched at each setting
        for value in values:
            options = {**base, knob: value}
            result, found = search(built, IndexSpec(kind, options), query, positives, args.k)
            label = " ".join([kind, *(f"{key}={v}" for key, v in options.items() if key != "neighbors")])
            rows[label] = {"build_s": seconds, **result, **agreement(found, exact_found, args.k)}
        del built

    k = args.k
    columns = ["index", "build (s)", "search (s)", "top-1 agreement", f"top-{k} overlap", "R@1   ", f"R@{k}".ljust(6)]
    print(f"{args.queries} queries x {args.references} references x {args.dim}, top {k} "
          "(build: once per index, shared by its rows):")
    print("| " + " | ".join(f"{c:28s}" if i == 0 else c for i, c in enumerate(columns)) + " |")
    print("|" + "|".join("-" * 30 if i == 0 else "-" * (len(c) + 1) + ":" for i, c in enumerate(columns)) + "|")
    for name, row in rows.items():
        cells = [f"{row['build_s']:.1f}", f"{row['search_s']:.1f}", f"{row['top1_agreement']:.2f}%",
                 f"{row['overlap_with_exact']:.2f}%", f"{row['R@1']:.2f}", f"{row[f'R@{k}']:.2f}"]
        print(f"| {name:28s} | " + " | ".join(f"{v:>{len(c)}s}" for v, c in zip(cells, columns[1:])) + " |")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
