"""Time and memory of ``cvbench.metrics.recall`` against the bare matrix products it needs.

Each run is a fresh subprocess so that its peak resident memory
(``ru_maxrss``, which also sees torch's allocations, unlike tracemalloc) is its
own; the peak is reported above the baseline taken once the seeded float32
inputs are in memory. Runs of the different measurements are interleaved and
the best time of ``--repeats`` runs is reported. Three things are measured on
the same inputs:

* ``recall``: the metric with the given chunk size (default: automatic);
* ``chunked_matmul``: the same loop of (chunk, D) x (D, M) float32 ``torch.mm``
  products into one reused block, as recall does, with nothing else: the floor
  recall cannot beat;
* ``full_matmul``: one (N, D) x (D, M) product, only when N x M float32 fits in
  half of the available memory (20000 x 200000 is 16 GB: skipped on a 24 GiB box).

Usage::

    python benchmarks/perf/recall.py --queries 20000 --references 200000 --dim 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

KINDS = ("recall", "chunked_matmul", "full_matmul")


def _make_inputs(queries: int, references: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded standard-normal float32 embeddings, generated without float64 temporaries."""
    rng = np.random.default_rng(seed)
    query = rng.standard_normal((queries, dim), dtype=np.float32)
    reference = rng.standard_normal((references, dim), dtype=np.float32)
    positives = rng.integers(0, references, size=queries)
    return query, reference, positives


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in this (fresh) process and return its timings and peak memory."""
    import torch

    from cvbench import metrics
    from cvbench.evaluation import exact_ranking

    query, reference, positives = _make_inputs(args.queries, args.references, args.dim, args.seed)
    chunk = args.chunk_size or exact_ranking.default_chunk(args.references)
    q = torch.from_numpy(query)
    r = torch.from_numpy(reference)
    torch.mm(q[:2], r[:2].t())  # start MKL's thread pool before taking the baseline

    def run() -> Any:
        if args.worker == "recall":
            return metrics.recall(query, reference, positives, chunk_size=args.chunk_size)
        with torch.no_grad():
            if args.worker == "full_matmul":
                return float(torch.mm(q, r.t())[0, 0])
            block = torch.empty((min(chunk, args.queries), args.references), dtype=torch.float32)
            checksum = 0.0
            for start in range(0, args.queries, chunk):
                stop = min(start + chunk, args.queries)
                checksum += float(torch.mm(q[start:stop], r.t(), out=block[: stop - start])[0, 0])
            return checksum

    baseline = _peak_rss_bytes()
    times = []
    output = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        output = run()
        times.append(time.perf_counter() - start)
    return {
        "seconds_best": min(times),
        "seconds_all": times,
        "peak_rss_above_inputs_mib": (_peak_rss_bytes() - baseline) / 2**20,
        "inputs_mib": (query.nbytes + reference.nbytes + positives.nbytes) / 2**20,
        "chunk_size": chunk,
        "output": output,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One timed run of ``kind`` in a fresh subprocess."""
    command = [
        sys.executable, os.path.abspath(__file__), "--worker", kind,
        "--queries", str(args.queries), "--references", str(args.references), "--dim", str(args.dim),
        "--repeats", "1", "--seed", str(args.seed),
    ]  # fmt: skip
    if args.chunk_size:
        command += ["--chunk-size", str(args.chunk_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best time and largest peak over the runs of one measurement."""
    merged = dict(runs[0])
    merged["seconds_all"] = [run["seconds_best"] for run in runs]
    merged["seconds_best"] = min(merged["seconds_all"])
    merged["peak_rss_above_inputs_mib"] = max(run["peak_rss_above_inputs_mib"] for run in runs)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--references", type=int, default=200000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=None, help="queries per block (default: automatic)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per measurement, each in a fresh process; the best counts"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", default=None, help="write the results here")
    parser.add_argument("--worker", choices=KINDS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args)))
        return {}

    import torch

    full_bytes = args.queries * args.references * 4
    kinds = list(KINDS)
    results: dict[str, Any] = {}
    if full_bytes > _available_bytes() // 2:
        kinds.remove("full_matmul")
        results["full_matmul"] = {
            "skipped": f"N x M float32 needs {full_bytes / 2**30:.1f} GiB, over half the available memory"
        }
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):  # interleaved, so that load from other processes hits all alike
        for kind in kinds:
            print(f"run {repeat + 1}/{args.repeats}: {kind} ...", file=sys.stderr, flush=True)
            runs[kind].append(_measure(kind, args))
    results.update({kind: _merge(runs[kind]) for kind in kinds})
    results = {kind: results[kind] for kind in KINDS}

    recall_s = results["recall"]["seconds_best"]
    mm_s = results["chunked_matmul"]["seconds_best"]
    report = {
        "command": " ".join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:])),
        "config": {k: v for k, v in vars(args).items() if k not in ("worker", "json_path")},
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "threads": torch.get_num_threads(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
        },
        "results": results,
        "ratios": {
            "recall_time_over_chunked_matmul": recall_s / mm_s,
            "recall_peak_over_chunked_matmul_peak": results["recall"]["peak_rss_above_inputs_mib"]
            / max(results["chunked_matmul"]["peak_rss_above_inputs_mib"], 1e-9),
        },
    }
    if "seconds_best" in results["full_matmul"]:
        report["ratios"]["recall_time_over_full_matmul"] = recall_s / results["full_matmul"]["seconds_best"]

    rows = [("measurement", "time (s)", "peak RSS above inputs (MiB)")]
    for kind, result in results.items():
        if "skipped" in result:
            rows.append((kind, "skipped", result["skipped"]))
        else:
            rows.append((kind, f"{result['seconds_best']:.2f}", f"{result['peak_rss_above_inputs_mib']:.0f}"))
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0]:<{width[0]}}  {row[1]:>{width[1]}}  {row[2]}")
    for name, value in report["ratios"].items():
        print(f"{name}: {value:.3f}")
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(report, out, indent=2)
    return report


if __name__ == "__main__":
    main()
