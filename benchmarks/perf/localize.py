"""How long localising 1,000 query images against 10,000 indexed tiles takes, query embedding included.

Set-up (not timed): a smoke run on the small synthetic world (``--run`` to
use another finished run), the world's val split exported by ``cvbench data
synth``, an index of ``--tiles`` tiles built with ``cvbench.build_tile_index``
(the 160 exported tiles listed over and over in one tile CSV, each row at
its own position: the index holds ``--tiles`` real embeddings), and a
folder of ``--queries`` query PNGs (the exported panoramas, copied).

Timed: :func:`cvbench.localize` on that folder, top 5 per query, which
checks every file decodes, reads and embeds the queries through the run's
ground branch and searches the exact faiss index; ``--repeats`` times, the
median reported, with the load average (other work on the machine slows
it). Then the whole ``cvbench localize`` command once, as its own process
(interpreter and torch start-up included), writing CSV.

Usage::

    python benchmarks/perf/localize.py --queries 1000 --tiles 10000 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from PIL import Image

SMALL_WORLD = ("--data-option", "train_pairs=160", "--data-option", "val_pairs=160")


def shell(*args: str) -> str:
    """``cvbench ARGS`` in a fresh interpreter; its standard output (a failure stops the benchmark)."""
    done = subprocess.run([sys.executable, "-m", "cvbench", *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "100"})
    return done.stdout


def prepare(work: Path, run: Path | None, tiles: int, queries: int) -> tuple[Path, Path, Path]:
    """The run folder, the index folder and the query folder (see the module docstring)."""
    import cvbench

    if run is None:
        run = Path(cvbench_run(work))
    world = work / "world"
    shell("data", "synth", "--out", str(world), *SMALL_WORLD)
    listed = pd.read_csv(world / "val" / "tiles.csv")
    rows = listed.iloc[[i % len(listed) for i in range(tiles)]].reset_index(drop=True)
    rows["x"] = rows["x"] + 1000.0 * (rows.index // len(listed))  # each copy at its own place
    rows.to_csv(world / "val" / "many_tiles.csv", index=False)
    loaded = cvbench.load_run(run, device="cpu")
    index = cvbench.build_tile_index(loaded, cvbench.read_tiles(world / "val" / "many_tiles.csv"))
    index.save(work / "index")
    folder = work / "queries"
    folder.mkdir()
    panoramas = sorted((world / "val" / "ground").glob("*.png"))
    for i in range(queries):
        shutil.copy(panoramas[i % len(panoramas)], folder / f"q{i:06d}.png")
    return run, work / "index", folder


def cvbench_run(work: Path) -> str:
    """A finished smoke run on the small world (about 10 s on 2 CPU cores); its folder."""
    return shell("run", "--preset", "smoke", *SMALL_WORLD, "--device", "cpu", "--quiet",
                   "--runs-dir", str(work / "runs")).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run (default: a smoke run made here)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--tiles", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3, help="timed localize calls (the median is reported)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import torch

    import cvbench

    with tempfile.TemporaryDirectory(prefix="cvbench-localize-bench-") as tmp:
        run, index_dir, queries = prepare(Path(tmp), args.run, args.tiles, args.queries)
        loaded = cvbench.load_run(run, device="cpu")
        index = cvbench.load_tile_index(index_dir)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = cvbench.localize(loaded, index, queries, top_k=5)
            times.append(time.perf_counter() - start)
        assert result.summary()["queries"] == args.queries
        start = time.perf_counter()
        shell("localize", str(run), "--index", str(index_dir), "--queries", str(queries), "--top-k", "5",
                "--device", "cpu", "--quiet", "--out", str(Path(tmp) / "top.csv"))
        command = time.perf_counter() - start
        spec = loaded.spec
        with Image.open(next(queries.iterdir())) as image:
            query_size = (image.height, image.width)
    per_1000 = statistics.median(times) * 1000 / args.queries
    report = {
        "queries": args.queries, "tiles": len(index), "backbone": spec.backbone, "head": spec.head,
        "dim": loaded.dim, "ground_size": list(spec.ground_size), "aerial_size": list(spec.aerial_size),
        "query_files": f"PNG {query_size[0]}x{query_size[1]}", "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "api_seconds": [round(t, 3) for t in times], "api_seconds_per_1000_queries": round(per_1000, 3),
        "command_seconds": round(command, 3),
    }
    print(f"cvbench.localize: {per_1000:.2f} s per 1,000 queries against {len(index):,} tiles "
          f"({spec.backbone} + {spec.head}, dim {loaded.dim}, {query_size[0]}x{query_size[1]} PNG queries, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}; "
          f"runs {', '.join(f'{t:.2f}' for t in times)} s)")
    print(f"cvbench localize (whole command, {args.queries} queries, start-up included): {command:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
