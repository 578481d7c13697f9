"""Time and memory of ``cvbench.metrics.recall`` against the FLOP roof and the bare matrix products.

Each run is a fresh subprocess so that its peak resident memory
(``ru_maxrss``, which also sees torch's allocations, unlike tracemalloc) is its
own; the peak is reported above the baseline taken once the seeded float32
inputs are in memory. Runs of the different measurements are interleaved and
the best time of ``--repeats`` runs is reported. Measured on the same inputs:

* ``recall``: the metric (``--device``, default the CPU; ``--chunk-size``);
* ``square_gemm``: the GFLOP/s of one square float32 ``torch.mm`` (``--square``
  rows), the machine's matrix-product roof; ``roof`` is the time the ranking's
  2 N M D FLOPs need at that rate;
* ``chunked_matmul``: the loop of (chunk, D) x (D, M) float32 ``torch.mm``
  products into one reused ~256 MiB block, as ``recall`` ran them before its
  tiles (chunk 2^26 // M), with nothing else;
* ``full_matmul``: one (N, D) x (D, M) product, only when N x M float32 fits in
  half of the available memory (20000 x 200000 is 16 GB: skipped on a 24 GiB box);
* with ``--phases``, once, where ``recall``'s time goes: the unit copies of
  the inputs, the tiled products alone, the sweep (the rest), and the exact
  comparisons of the close cases.

``--avx2`` runs every measurement as on a CPU without AVX-512
(``ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``).

Usage::

    python benchmarks/perf/recall.py --queries 20000 --references 200000 --dim 256 --repeats 2 --json out.json
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

KINDS = ("recall", "square_gemm", "chunked_matmul", "full_matmul")
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


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
    chunk = exact_ranking.default_chunk(args.references)  # the block recall used before its tiles
    q = torch.from_numpy(query)
    r = torch.from_numpy(reference)
    torch.mm(q[:2], r[:2].t())  # start MKL's thread pool before taking the baseline
    if args.device != "cpu":  # and the device's context and BLAS handle, outside the timed runs
        torch.mm(q[:2].to(args.device), r[:2].to(args.device).t()).cpu()
    if args.worker == "phases":
        return _phases(args, query, reference, positives)
    if args.worker == "square_gemm":
        return _square_gemm(args.square, args.repeats, args.device)

    def run() -> Any:
        if args.worker == "recall":
            return metrics.recall(query, reference, positives, chunk_size=args.chunk_size, device=args.device)
        with torch.no_grad():
            if args.worker == "full_matmul":
                return float(torch.mm(q, r.t())[0, 0])
            left, right = q.to(args.device), r.to(args.device)  # on an accelerator: the products there
            block = torch.empty((min(chunk, args.queries), args.references), dtype=torch.float32, device=args.device)
            checksum = 0.0
            for start in range(0, args.queries, chunk):
                stop = min(start + chunk, args.queries)
                checksum += float(torch.mm(left[start:stop], right.t(), out=block[: stop - start])[0, 0])
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


def _square_gemm(size: int, repeats: int, device: str) -> dict[str, Any]:
    """GFLOP/s of a (size x size) x (size x size) IEEE float32 product on ``device``, best of ``repeats`` (3 at
    least) after a warm-up."""
    import torch
    from flops import gemm_tflops

    from cvbench.evaluation.exact_ranking import ieee_float32_matmul

    with ieee_float32_matmul():
        gflops = 1e3 * gemm_tflops(torch.device(device), size, repeats=max(3, repeats))
    return {"seconds_best": 2 * size**3 / gflops / 1e9, "gflops": gflops, "size": size,
            "peak_rss_above_inputs_mib": 0.0}


def _phases(args: argparse.Namespace, query: np.ndarray, reference: np.ndarray,
            positives: np.ndarray) -> dict[str, Any]:
    """Seconds of each phase of one ``recall``: unit copies, tiled products alone, exact comparisons, sweep."""
    import torch

    from cvbench import metrics
    from cvbench.evaluation import exact_ranking, exact_scores

    spent = {"unit_copies": 0.0, "exact_comparisons": 0.0}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    unit_copies = exact_scores.queries_and_gallery
    exact_scores.queries_and_gallery = timed("unit_copies", unit_copies)
    exact_scores.exact_signs = timed("exact_comparisons", exact_scores.exact_signs)
    start = time.perf_counter()
    metrics.recall(query, reference, positives, device=args.device)
    total = time.perf_counter() - start
    sweep_block = exact_ranking._sweep_block

    def products_only(queries: Any, high: Any, low: Any, part: Any, first: int, *rest: Any) -> Any:
        rows, width = queries.shape[0], rest[1]
        tile = torch.empty(rows * width, dtype=queries.dtype, device=queries.device)
        for begin in range(0, part.shape[0], width):
            references = part[begin:begin + width]
            torch.mm(queries, references.t(), out=tile[: rows * references.shape[0]].view(rows, -1))
        zeros = torch.zeros(high.shape, dtype=torch.int64, device=queries.device)
        return exact_ranking._Swept(zeros, zeros)

    exact_ranking._sweep_block = products_only
    queries, gallery = unit_copies(query, reference)
    stream = exact_ranking.GalleryStream(gallery, exact_ranking.placement([], args.device))
    start = time.perf_counter()
    for first in range(0, queries.shape[0], exact_ranking.QUERY_CHUNK):
        part = queries[first:first + exact_ranking.QUERY_CHUNK]
        thresholds = torch.zeros((part.shape[0], 1))
        exact_ranking._sweep_tiles(part, thresholds, thresholds, stream, stream.where.device, False, 0)
    products = time.perf_counter() - start
    exact_ranking._sweep_block = sweep_block
    phases = {"total": total, "unit_copies": spent["unit_copies"], "tiled_products": products,
              "exact_comparisons": spent["exact_comparisons"]}
    phases["sweep_and_rest"] = total - sum(v for k, v in phases.items() if k != "total")
    return {"phases_seconds": phases, "peak_rss_above_inputs_mib": 0.0, "seconds_best": total}


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
        "--repeats", "1", "--seed", str(args.seed), "--square", str(args.square), "--device", args.device,
    ]  # fmt: skip
    if args.chunk_size:
        command += ["--chunk-size", str(args.chunk_size)]
    environment = {**os.environ, **(AVX2 if args.avx2 else {})}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best time and largest peak over the runs of one measurement."""
    merged = dict(runs[0])
    merged["seconds_all"] = [run["seconds_best"] for run in runs]
    merged["seconds_best"] = min(merged["seconds_all"])
    merged["peak_rss_above_inputs_mib"] = max(run["peak_rss_above_inputs_mib"] for run in runs)
    if "gflops" in merged:
        merged["gflops"] = max(run["gflops"] for run in runs)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--references", type=int, default=200000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=None, help="queries per chunk (default: automatic)")
    parser.add_argument("--device", default="cpu", help="where recall ranks (cpu, cuda, mps)")
    parser.add_argument("--square", type=int, default=4096, help="rows of the square GEMM that sets the roof")
    parser.add_argument("--avx2", action="store_true", help="measure as on a CPU without AVX-512")
    parser.add_argument("--phases", action="store_true", help="also time recall's phases once")
    parser.add_argument("--skip", nargs="*", default=[], choices=KINDS, help="measurements to leave out")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per measurement, each in a fresh process; the best counts"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", default=None, help="write the results here")
    parser.add_argument("--worker", choices=KINDS + ("phases",), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args)))
        return {}

    import torch

    full_bytes = args.queries * args.references * 4
    kinds = [kind for kind in KINDS if kind not in args.skip]
    results: dict[str, Any] = {kind: {"skipped": "--skip"} for kind in args.skip}
    if "full_matmul" in kinds and args.device != "cpu":
        kinds.remove("full_matmul")
        results["full_matmul"] = {"skipped": "measured on the CPU only"}
    if "full_matmul" in kinds and full_bytes > _available_bytes() // 2:
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
    if args.phases:
        print("phases ...", file=sys.stderr, flush=True)
        results["phases"] = _measure("phases", args)["phases_seconds"]

    flops = 2.0 * args.queries * args.references * args.dim
    ratios: dict[str, float] = {}
    recall_s = results["recall"].get("seconds_best")
    if "gflops" in results["square_gemm"]:
        roof_s = flops / (results["square_gemm"]["gflops"] * 1e9)
        results["roof"] = {"seconds_best": roof_s, "gflops": results["square_gemm"]["gflops"]}
        if recall_s:
            ratios["recall_time_over_square_gemm_roof"] = recall_s / roof_s
    if recall_s and "seconds_best" in results["chunked_matmul"]:
        ratios["recall_time_over_chunked_matmul"] = recall_s / results["chunked_matmul"]["seconds_best"]
        ratios["recall_peak_over_chunked_matmul_peak"] = (
            results["recall"]["peak_rss_above_inputs_mib"]
            / max(results["chunked_matmul"]["peak_rss_above_inputs_mib"], 1e-9))
    if recall_s and "seconds_best" in results["full_matmul"]:
        ratios["recall_time_over_full_matmul"] = recall_s / results["full_matmul"]["seconds_best"]
    report = {
        "command": " ".join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:])),
        "config": {k: v for k, v in vars(args).items() if k not in ("worker", "json_path")},
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "threads": torch.get_num_threads(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "isa": "avx2 (emulated: " + " ".join(f"{k}={v}" for k, v in AVX2.items()) + ")" if args.avx2 else "native",
            "load_average": os.getloadavg(),
        },
        "results": results,
        "ratios": ratios,
    }

    print(f"{args.queries} x {args.references} x {args.dim}, {flops / 1e12:.2f} TFLOP, device {args.device}, "
          f"{report['environment']['isa']}, load average {os.getloadavg()[0]:.2f}")
    rows = [("measurement", "time (s)", "peak RSS above inputs (MiB)")]
    order = ["recall", "roof", "square_gemm", "chunked_matmul", "full_matmul", "phases"]
    for kind, result in sorted(results.items(), key=lambda item: order.index(item[0])):
        if kind == "phases":
            rows += [(f"  phase: {name}", f"{value:.2f}", "") for name, value in result.items()]
        elif "skipped" in result:
            rows.append((kind, "skipped", result["skipped"]))
        elif kind in ("square_gemm", "roof"):
            rows.append((f"{kind} ({result['gflops']:.0f} GFLOP/s)", f"{result['seconds_best']:.2f}", ""))
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
