"""How long `cvbench --help`, `cvbench plugins --help` and `cvbench run --help` take, start to exit.

Each command runs ``--runs`` times as its own process (the installed
``cvbench`` console script beside this interpreter, else ``python -m
cvbench``), one after the other, and the median wall time is reported with
the fastest and slowest. A fresh process each time is the point: what is
measured is the imports a new shell pays before typer prints the help.
``--baseline`` adds ``python -c pass``, the interpreter's own start-up.

Usage::

    python benchmarks/perf/startup.py --runs 7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (("--help",), ("plugins", "--help"), ("run", "--help"))


def cvbench_command() -> list[str]:
    """The console script installed with this interpreter, as a user types it; else the module."""
    script = Path(sys.executable).with_name("cvbench")
    if script.exists():
        return [str(script)]
    found = shutil.which("cvbench")
    return [found] if found else [sys.executable, "-m", "cvbench"]


def wall_times(argv: list[str], runs: int) -> list[float]:
    """Seconds from start to exit of ``argv``, ``runs`` times; a failing command stops the benchmark."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env={**os.environ, "COLUMNS": "100"})
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per command (the median is reported)")
    parser.add_argument("--baseline", action="store_true", help="also time `python -c pass`")
    parser.add_argument("--json", type=Path, help="also write the times here")
    args = parser.parse_args()
    cvbench = cvbench_command()
    cases = {"cvbench " + " ".join(command): cvbench + list(command) for command in COMMANDS}
    if args.baseline:
        cases["python -c pass"] = [sys.executable, "-c", "pass"]
    results = {}
    print(f"{'command':<26} {'median s':>9} {'min s':>7} {'max s':>7}   ({args.runs} runs each)")
    for name, argv in cases.items():
        times = wall_times(argv, args.runs)
        results[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                         "runs": args.runs}
        print(f"{name:<26} {results[name]['median_s']:>9.2f} {min(times):>7.2f} {max(times):>7.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
