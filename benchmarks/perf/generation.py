"""Synthetic world generation rate: pairs per second of today's generator against a committed baseline.

Generates the ``cross_area`` train subset of the built-in world with the
given size (cities, panoramas, tiles, labels; in memory) with the generator
of a baseline commit (``git archive`` of ``plugins/datasets/synthetic`` into
a temporary folder, imported from there, single process as it was) and with
today's, in one process and on every core, interleaved and repeated; checks
that all three give the same bytes; and reports the pairs per second and
the CPU time per pair (all processes; what a busy machine changes least),
the best of the repeats, beside the load average. Then it times reading a
cached subset back.

Usage::

    python benchmarks/perf/generation.py --pairs 1000 --repeats 2 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType

from cvbench.contract.registry import create

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
    with tempfile.TemporaryDirectory() as folder:
        old = load_baseline(args.baseline, Path(folder))
        old_generate = importlib.import_module("synthetic_baseline.generate")
        old_options = importlib.import_module("synthetic_baseline.options").SyntheticOptions.parse(options)
        runs: dict[str, list[float]] = {"baseline": [], "one_process": [], "all_cores": []}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        prints = set()
        for _ in range(args.repeats):
            for name, generate, opts, kwargs in (("baseline", old_generate.generate, old_options, {}),
                                                 ("one_process", new_generate.generate, new_options, {"workers": 1}),
                                                 ("all_cores", new_generate.generate, new_options, {})):
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
    result = {"pairs": args.pairs, "cities": args.cities, "baseline": args.baseline, "workers": workers,
              "seconds": runs, "cpu_seconds": cpu, "pairs_per_s": rates, "identical": len(prints) == 1,
              "cpu_ms_per_pair": {name: 1000 * min(used) / args.pairs for name, used in cpu.items()},
              "speedup": rates["all_cores"] / rates["baseline"], "cached_read_s": cached,
              "load_average": os.getloadavg()}
    print(f"{args.pairs} pairs of {args.cities} cities, best of {args.repeats}: baseline {args.baseline} "
          f"{rates['baseline']:.0f} pairs/s, today in one process {rates['one_process']:.0f} pairs/s, "
          f"on {workers} cores {rates['all_cores']:.0f} pairs/s ({result['speedup']:.2f}x); CPU per pair "
          f"{' / '.join(f'{ms:.1f}' for ms in result['cpu_ms_per_pair'].values())} ms; "
          f"same bytes: {result['identical']}; cached read {cached:.2f} s; "
          f"load average {' '.join(f'{x:.2f}' for x in result['load_average'])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
