"""Synthetic world generation rate: pairs per second of today's generator against a committed baseline.

Generates the ``cross_area`` train subset of the built-in world with the
given size (cities, panoramas, tiles, labels; in memory) with the generator
of a baseline commit (``git archive`` of ``plugins/datasets/synthetic`` into
a temporary folder, imported from there; in one process, and on every core
too where that generator has a ``workers`` option) and with today's, in one
process and on every core, interleaved and repeated; checks that all give
the same bytes; and reports the pairs per second (the best and the median
of the repeats), the speedup paired by round with its 95% interval (the
machine's drift cancels within a round), and the CPU time per pair (all
processes; what a busy machine changes least), beside the load average.
Then it times reading a cached subset back.

Usage::

    python benchmarks/perf/generation.py --pairs 1000 --repeats 2 --baseline 420f5e7 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import inspect
import io
import json
import math
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from cvbench.contract.registry import create
from cvbench.evaluation.statistics import paired_difference

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = "plugins/datasets/synthetic"
# The last commit before issue 20 sped the generator up.
BASELINE = "56468d3"


def load_baseline(revision: str, folder: Path) -> ModuleType:
    """The synthetic package as of ``revision``, imported as ``synthetic_baseline``."""
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", revision, PACKAGE],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    source = folder / PACKAGE
    spec = importlib.util.spec_from_file_location("synthetic_baseline", source / "__init__.py",
                                                  submodule_search_locations=[str(source)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic_baseline"] = module
    spec.loader.exec_module(module)
    return module


def fingerprint(arrays) -> str:
    """One hash of everything a subset stores."""
    digest = hashlib.sha256()
    for field in ("ground", "aerial", "positives"):
        digest.update(getattr(arrays, field).tobytes())
    for field in ("ground_meta", "aerial_meta"):
        digest.update(getattr(arrays, field).to_csv(index=False).encode())
    return digest.hexdigest()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the generator's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(generate, options, **kwargs) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (all processes) and the fingerprint of one generation."""
    start, cpu = time.perf_counter(), cpu_seconds()
    (arrays,) = generate(options, "cross_area", ("train",), **kwargs).values()
    return time.perf_counter() - start, cpu_seconds() - cpu, fingerprint(arrays)


def paired_speedup(baseline: list[float], today: list[float]) -> dict[str, float]:
    """Speedup of ``today`` over ``baseline`` paired by round (calls of one round ran back to back).

    The geometric mean of the per-round time ratios, with the 95% paired-t
    interval of their logarithms: what a drifting machine does to both calls
    of a round cancels. A round's first baseline call, which may compile the
    baseline's kernels, is left out when more than two rounds ran.
    """
    rounds = slice(1, None) if len(baseline) > 2 else slice(None)
    # The paired difference log(baseline time) - log(today's time) is the log of the speedup.
    summary = paired_difference(baseline=np.log(today[rounds]), treatment=np.log(baseline[rounds]))
    return {"speedup": math.exp(summary.mean), "low": math.exp(summary.low), "high": math.exp(summary.high),
            "rounds": summary.n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="queries (and tiles) of the train subset")
    parser.add_argument("--cities", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the generator to compare against")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    options = {"train_pairs": args.pairs, "val_pairs": max(2, args.pairs // 2), "num_train_cities": args.cities}
    new_generate = importlib.import_module("cvbench_plugins.datasets.synthetic.generate")
    new_options = importlib.import_module("cvbench_plugins.datasets.synthetic.options").SyntheticOptions.parse(options)
    workers = new_generate.default_workers()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        old = load_baseline(args.baseline, Path(folder))
        old_generate = importlib.import_module("synthetic_baseline.generate")
        old_options = importlib.import_module("synthetic_baseline.options").SyntheticOptions.parse(options)
        contenders = [("baseline", old_generate.generate, old_options, {"workers": 1}),
                      ("one_process", new_generate.generate, new_options, {"workers": 1}),
                      ("all_cores", new_generate.generate, new_options, {})]
        if "workers" in inspect.signature(old_generate.generate).parameters:
            contenders.insert(1, ("baseline_all_cores", old_generate.generate, old_options, {}))
        else:
            contenders[0] = ("baseline", old_generate.generate, old_options, {})
        runs: dict[str, list[float]] = {name: [] for name, *_ in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        prints = set()
        for _ in range(args.repeats):
            for name, generate, opts, kwargs in contenders:
                seconds, used, digest = timed(generate, opts, **kwargs)
                runs[name].append(seconds)
                cpu[name].append(used)
                prints.add(digest)
        del old
    with tempfile.TemporaryDirectory() as cache:
        create("dataset", "synthetic", Path(cache), **options).load("cross_area", "train")
        start = time.perf_counter()
        again = create("dataset", "synthetic", Path(cache), **options).load("cross_area", "train")
        _ = [again.ground[i] for i in range(len(again.ground))]
        cached = time.perf_counter() - start
    rates = {name: args.pairs / min(seconds) for name, seconds in runs.items()}
    median_rates = {name: args.pairs / float(np.median(seconds)) for name, seconds in runs.items()}
    # Like against like: each of today's runs against the baseline run the same way (one process, every core).
    against = {"one_process": "baseline",
               "all_cores": "baseline_all_cores" if "baseline_all_cores" in runs else "baseline"}
    speedup = {name: rates[name] / rates[base] for name, base in against.items()}
    paired = {name: paired_speedup(runs[base], runs[name]) for name, base in against.items()}
    result = {"pairs": args.pairs, "cities": args.cities, "baseline": args.baseline, "workers": workers,
              "date": time.strftime("%Y-%m-%d"), "seconds": runs, "cpu_seconds": cpu, "pairs_per_s": rates,
              "median_pairs_per_s": median_rates, "paired_speedup": paired,
              "identical": len(prints) == 1,
              "cpu_ms_per_pair": {name: 1000 * min(used) / args.pairs for name, used in cpu.items()},
              "speedup": speedup, "cached_read_s": cached,
              "load_average_before": load_before, "load_average": os.getloadavg()}
    print(f"{args.pairs} pairs of {args.cities} cities on {workers} cores, best of {args.repeats}, pairs/s: "
          + ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items())
          + f" (against the baseline run the same way: {speedup['one_process']:.2f}x in one process, "
          f"{speedup['all_cores']:.2f}x on every core); median pairs/s: "
          + ", ".join(f"{name} {rate:.0f}" for name, rate in median_rates.items())
          + "; paired over the rounds, 95% interval: "
          + ", ".join(f"{name} {p['speedup']:.2f}x ({p['low']:.2f}-{p['high']:.2f})" for name, p in paired.items())
          + "; CPU ms per pair: "
          + ", ".join(f"{name} {ms:.1f}" for name, ms in result["cpu_ms_per_pair"].items())
          + f"; same bytes: {result['identical']}; cached read {cached:.2f} s; "
          f"load average before {load_before[0]:.2f}, after {' '.join(f'{x:.2f}' for x in result['load_average'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
