"""Synthetic world generation rate: panoramas and tiles per second, cold cache.

Generates the ``cross_area`` train subset of the built-in world with the
given size into a temporary cache (nothing reused) and reports the pairs per
second, beside the rate of only reading the cached arrays back.

Usage::

    python benchmarks/perf/generation.py --pairs 1000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cvbench.contract.registry import create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="queries (and tiles) of the train subset")
    parser.add_argument("--cities", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        dataset = create("dataset", "synthetic", Path(cache), train_pairs=args.pairs, val_pairs=max(2, args.pairs // 2),
                         num_train_cities=args.cities)
        start = time.perf_counter()
        pairs = dataset.load("cross_area", "train")
        generated = time.perf_counter() - start
        fresh = create("dataset", "synthetic", Path(cache), train_pairs=args.pairs,
                       val_pairs=max(2, args.pairs // 2), num_train_cities=args.cities)
        start = time.perf_counter()
        again = fresh.load("cross_area", "train")
        _ = [again.ground[i] for i in range(len(again.ground))]
        cached = time.perf_counter() - start
    result = {"pairs": pairs.num_queries, "tiles": pairs.num_references, "cities": args.cities,
              "generate_s": generated, "pairs_per_s": pairs.num_queries / generated,
              "cached_read_s": cached}
    print(f"generated {pairs.num_queries} panoramas and {pairs.num_references} tiles of {args.cities} cities "
          f"in {generated:.1f} s: {pairs.num_queries / generated:.1f} pairs/s; "
          f"reading them back from the cache: {cached:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
