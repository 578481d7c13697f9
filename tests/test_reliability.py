"""Records survive hostile timing: a writer killed mid-write, two runs writing into one folder at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import SMALL_WORLD_ARGS, cli

WRITER = """
import sys
from cvbench.atomic import write_json
target = sys.argv[1]
for number in range(10**9):
    write_json(target, {"number": number, "padding": "x" * 200_000})
    if number == 0:
        print("first", flush=True)
"""


def test_a_writer_killed_at_any_moment_leaves_a_complete_file(tmp_path):
    target = tmp_path / "result.json"
    for delay in (0.0, 0.013, 0.031, 0.057, 0.11):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "first"
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        record = json.loads(target.read_text())  # never truncated, never a mix of two writes
        assert len(record["padding"]) == 200_000 and record["number"] >= 0


def test_two_runs_at_once_in_one_runs_folder_both_finish_in_their_own_folders(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "CVBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}  # both generate the world
    args = [sys.executable, "-m", "cvbench", "run", "--preset", "smoke", "--runs-dir", str(runs), "--quiet",
            *SMALL_WORLD_ARGS]
    first, second = (subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2))
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.wait(timeout=300) == 0, second.stderr.read()
    folders = sorted(path for path in runs.iterdir() if path.is_dir())
    assert len(folders) == 2
    records = [json.loads((folder / "result.json").read_text()) for folder in folders]
    assert [r["status"] for r in records] == ["finished", "finished"]
    assert records[0]["metrics"] == records[1]["metrics"]  # same seed, same numbers, no interference
    listing = cli("leaderboard", str(runs), "--format", "csv")
    assert listing.returncode == 0 and len(listing.stdout.strip().splitlines()) == 3
