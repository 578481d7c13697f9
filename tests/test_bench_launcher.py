"""``cvbench bench --launcher submitit``: a grid's runs as jobs, the same records as a local run, ``--status``.

One module fixture runs a two-row smoke grid twice: with the local launcher,
and through submitit's local executor (``cluster=local``: the jobs are
processes of this machine, no SLURM), first ``--no-wait`` for one row, then
waiting for both. The rest checks, without running anything, how options
become sbatch lines, the torchrun command of a multi-GPU row, and each
refusal before anything is submitted.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from conftest import SMALL_WORLD, cli

from cvbench.bench.launchers import parse_options
from cvbench.bench.submitit_launcher import (SubmititLauncher, executor_parameters, job_state, memory_gb,
                                             slurm_minutes, torchrun_command)
from cvbench.errors import CvbenchError

GRID = f"""
[bench]
title = "launcher test"
seeds = [0]

[defaults]
preset = "smoke"
data_options = {{ train_pairs = {SMALL_WORLD['train_pairs']}, val_pairs = {SMALL_WORLD['val_pairs']} }}

[[rows]]
name = "a"

[[rows]]
name = "b"
head = "gem"
"""
SUBMITIT_LOCAL = ("--launcher", "submitit", "--launcher-option", "cluster=local")


def states(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``--status``'s table as {(row, seed): (status, job)}."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines() if line.startswith("│")]
    return {(row[0], row[1]): (row[2], row[3]) for row in rows}


def metrics(runs: Path) -> dict[str, dict]:
    """Each row's finished metrics, from its result.json."""
    found = {}
    for path in runs.glob("*/*/result.json"):
        record = json.loads(path.read_text())
        if record["status"] == "finished":
            found[path.parent.parent.name] = record["metrics"]
    return found


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """The grid run locally, then through submitit's local executor (row a submitted --no-wait, then both
    waited for), with what each step printed."""
    root = tmp_path_factory.mktemp("launcher")
    grid = root / "grid.toml"
    grid.write_text(GRID)
    local, jobs = root / "local", root / "jobs"
    seen = SimpleNamespace(grid=grid, local=local, jobs=jobs)
    seen.local_run = cli("bench", str(grid), "--runs-dir", str(local), "--quiet")
    started = time.monotonic()
    seen.no_wait = cli("bench", str(grid), "--runs-dir", str(jobs), *SUBMITIT_LOCAL, "--no-wait", "--only", "a",
                       "--quiet")
    seen.no_wait_s = time.monotonic() - started
    ledger = jobs / "jobs" / "jobs.json"
    (entry,) = json.loads(ledger.read_text())["jobs"]
    result = Path(entry["folder"]) / f"{entry['job_id']}_0_result.pkl"
    seen.finished_on_return = result.exists()
    seen.status_early = cli("bench", str(grid), "--runs-dir", str(jobs), "--status")
    seen.finished_after_status = result.exists()  # the early status is only telling while the job still runs
    seen.waited = cli("bench", str(grid), "--runs-dir", str(jobs), *SUBMITIT_LOCAL, "--quiet")
    seen.ledger_after_wait = json.loads(ledger.read_text())["jobs"]
    seen.status = cli("bench", str(grid), "--runs-dir", str(jobs), "--status")
    seen.rerun = cli("bench", str(grid), "--runs-dir", str(jobs), *SUBMITIT_LOCAL, "--quiet")
    seen.ledger_after_rerun = json.loads(ledger.read_text())["jobs"]
    return seen


def test_submitit_jobs_write_the_records_a_local_run_writes(grids):
    """Each row run as a submitit job (local executor) records the metrics the local launcher's run records."""
    assert grids.local_run.returncode == 0, grids.local_run.stderr
    assert grids.waited.returncode == 0, grids.waited.stdout + grids.waited.stderr
    local, jobs = metrics(grids.local), metrics(grids.jobs)
    assert set(local) == {"a", "b"} and jobs == local
    assert (grids.jobs / "leaderboard.md").exists()


def test_no_wait_returns_before_the_job_ends_and_status_shows_it_in_flight(grids):
    """--no-wait prints the job id and how to check, and returns while the job runs; --status then shows the
    row queued or running under that job, and the row not submitted as to run."""
    assert grids.no_wait.returncode == 0, grids.no_wait.stderr
    job = json.loads((grids.jobs / "jobs" / "jobs.json").read_text())["jobs"][0]["job_id"]
    assert f"submitted: a seed 0: job {job}" in grids.no_wait.stdout
    assert "--status" in grids.no_wait.stdout
    assert not grids.finished_on_return
    early = states(grids.status_early.stdout)
    assert early[("b", "0")] == ("to run", "")
    if not grids.finished_after_status:
        assert early[("a", "0")] in (("queued", job), ("running", job))


def test_status_after_the_jobs_lists_them_finished_and_a_rerun_submits_nothing(grids):
    """--status names each finished row's job; the waiting call did not submit row a again, and a rerun
    skips both finished rows without a new job."""
    ledger = grids.ledger_after_wait
    assert sorted(entry["row"] for entry in ledger) == ["a", "b"]
    assert states(grids.status.stdout) == {("a", "0"): ("finished", ledger[0]["job_id"]),
                                           ("b", "0"): ("finished", ledger[1]["job_id"])}
    assert "0 runs made, 2 already finished" in grids.rerun.stdout
    assert grids.ledger_after_rerun == ledger


def test_status_of_a_local_grid_reads_the_records(grids, tmp_path):
    """Without jobs, --status reads the records: a finished row, and a row whose run failed with its error."""
    runs = tmp_path / "runs"
    shutil.copytree(grids.local, runs)
    (record_path,) = (runs / "b").glob("*/result.json")
    record = json.loads(record_path.read_text())
    record.update(status="failed", error="ValueError: boom")
    record_path.write_text(json.dumps(record))
    result = cli("bench", str(grids.grid), "--runs-dir", str(runs), "--status")
    assert result.returncode == 0, result.stderr
    assert states(result.stdout) == {("a", "0"): ("finished", ""), ("b", "0"): ("failed", "")}
    assert "ValueError: boom" in result.stdout and record_path.parent.name in result.stdout


# ---------------------------------------------------------------- options, without running anything


def test_launcher_options_parse_repeated_and_comma_separated():
    assert parse_options(["partition=gpu,gpus=4", "time=35:00:00", "gpus=2"]) == {
        "partition": "gpu", "gpus": "2", "time": "35:00:00"}
    with pytest.raises(CvbenchError, match="KEY=VALUE"):
        parse_options(["partition"])


@pytest.mark.parametrize("text, minutes", [("35:00:00", 2100), ("1-12:00:00", 2160), ("90", 90), ("90:30", 91),
                                           ("2-0", 2880), ("1-1:30", 1530)])
def test_slurm_time_limits_in_minutes(text, minutes):
    assert slurm_minutes(text) == minutes


def test_bad_time_and_memory_are_named():
    for bad in ("abc", "0", "1:2:3:4"):
        with pytest.raises(CvbenchError, match=f"time={bad}"):
            slurm_minutes(bad)
    assert (memory_gb("64G"), memory_gb("1T"), memory_gb("2048"), memory_gb("512MB")) == (64, 1024, 2, 0.5)
    with pytest.raises(CvbenchError, match="mem=lots"):
        memory_gb("lots")


def test_options_become_the_sbatch_lines_slurm_reads(tmp_path):
    """The options through submitit's own SLURM executor: the sbatch script holds the flags sbatch documents."""
    import submitit
    from submitit.slurm.slurm import SlurmExecutor

    options = parse_options(["partition=gpu,gpus=4,time=35:00:00,cpus=16,mem=64G,account=geo,qos=high,"
                             "constraint=a100"])
    with mock.patch.object(SlurmExecutor, "affinity", return_value=2):  # no srun here
        executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(**executor_parameters(options))
    lines = set(executor._executor._make_submission_file_text("true", "uid").splitlines())
    assert {"#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --time=2100",
            "#SBATCH --cpus-per-task=16", "#SBATCH --mem=64GB", "#SBATCH --account=geo", "#SBATCH --qos=high",
            "#SBATCH --constraint=a100", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1"} <= lines


def test_a_multi_gpu_row_runs_under_torchrun_with_its_spec_in_a_config_file(tmp_path):
    """gpus=4: the job is torchrun with 4 processes on `cvbench run --config FILE`, FILE the row's own spec."""
    from cvbench.bench.scheduler import Job
    from cvbench.runs.assemble import resolve_spec
    from cvbench.spec.config import load_config
    from cvbench.spec.run_spec import RunSpec

    spec = resolve_spec(RunSpec.from_dict({"preset": "smoke", "head": "gem", "seed": 3}))
    launcher = SubmititLauncher(parse_options(["cluster=local,gpus=4"]))
    submitted = []
    launcher._executor = SimpleNamespace(
        update_parameters=lambda **kwargs: None,
        submit=lambda fn, *args: submitted.append(fn) or SimpleNamespace(
            job_id="12", paths=SimpleNamespace(folder=tmp_path / "jobs" / "12")))
    launcher._submit_or_find([Job("b", 3, spec)], tmp_path, {"b": tmp_path / "b"}, "run")
    config = tmp_path.resolve() / "jobs" / "specs" / "b-s3.toml"
    assert submitted[0].command == torchrun_command(4, "run", config, tmp_path.resolve() / "b") == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4", "-m", "cvbench", "run",
        "--config", str(config), "--runs-dir", str(tmp_path.resolve() / "b"), "--quiet"]
    assert resolve_spec(RunSpec.from_dict(load_config(config))) == spec


def test_a_job_still_in_flight_is_not_submitted_again(tmp_path):
    """A ledger entry whose local job process lives (here: this process) is running: a rerun keeps it."""
    from cvbench.atomic import write_json
    from cvbench.bench.scheduler import Job
    from cvbench.runs import liveness
    from cvbench.runs.assemble import resolve_spec
    from cvbench.spec.run_spec import RunSpec

    spec = resolve_spec(RunSpec.from_dict({"preset": "smoke"}))
    entry = {"row": "a", "seed": 0, "job_id": str(os.getpid()), "cluster": "local", "stage": "run",
             "folder": str(tmp_path / "jobs" / "1"), "submitted": liveness.now(), "spec": spec.to_dict(),
             "owner": {**liveness.owner(), "process_start": None}}
    write_json(tmp_path / "jobs" / "jobs.json", {"jobs": [entry]})
    launcher = SubmititLauncher({"cluster": "local"})
    launcher._executor = SimpleNamespace(submit=mock.Mock(side_effect=AssertionError("submitted again")))
    launcher._submit_or_find([Job("a", 0, spec)], tmp_path, {"a": tmp_path / "a"}, "run")
    assert launcher.in_flight == [("a", 0, str(os.getpid()))] and launcher.submitted == []


def test_job_states_from_the_result_file_and_the_process(tmp_path):
    """A job that raised is failed with its error and its log; one whose process ended without a result too."""
    from cvbench.runs import liveness

    ended = subprocess.Popen(["true"])
    ended.wait()
    entry = {"job_id": str(ended.pid), "cluster": "local", "folder": str(tmp_path), "submitted": liveness.now(),
             "owner": {**liveness.owner(), "pid": ended.pid, "process_start": None}}
    state, detail = job_state(entry)
    assert state == "failed" and str(tmp_path / f"{ended.pid}_0_log.err") in detail
    with open(tmp_path / f"{ended.pid}_0_result.pkl", "wb") as handle:
        pickle.dump(("error", "Traceback (most recent call last):\nValueError: boom\n"), handle)
    assert job_state(entry) == ("failed", f"ValueError: boom; log: {tmp_path / f'{ended.pid}_0_log.err'}")


# ---------------------------------------------------------------- refusals before anything is submitted


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "grid.toml"
    path.write_text(GRID)
    return path


def test_without_slurm_and_without_cluster_local_nothing_is_submitted(grid, tmp_path):
    runs = tmp_path / "runs"
    result = cli("bench", str(grid), "--runs-dir", str(runs), "--launcher", "submitit", "--launcher-option",
                 "partition=gpu,time=1:00:00", env={"PATH": str(tmp_path)})  # no sbatch on this PATH
    assert result.returncode == 2
    assert "no SLURM on this machine (no sbatch on PATH)" in result.stderr and "cluster=local" in result.stderr
    assert not runs.exists()


def test_slurm_needs_a_time_limit(grid, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\nexit 1\n")
    (fake / "sbatch").chmod(0o755)
    result = cli("bench", str(grid), "--runs-dir", str(tmp_path / "runs"), "--launcher", "submitit",
                 "--launcher-option", "partition=gpu", env={"PATH": str(fake)})
    assert result.returncode == 2 and "--launcher-option time=HH:MM:SS" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_submitit_names_the_extra(grid, tmp_path):
    with mock.patch.dict(sys.modules, {"submitit": None}):
        result = cli("bench", str(grid), "--runs-dir", str(tmp_path), *SUBMITIT_LOCAL)
    assert result.returncode == 2 and "pip install cvbench[slurm]" in result.stderr


def test_unknown_launcher_option_lists_the_known_ones(grid, tmp_path):
    result = cli("bench", str(grid), "--runs-dir", str(tmp_path), "--launcher", "submitit", "--launcher-option",
                 "partion=gpu")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "partion" in result.stderr
    assert "known: cluster, partition, time, gpus, cpus, mem, account, qos, constraint" in result.stderr


def test_local_launcher_refuses_submitit_options_and_no_wait(grid, tmp_path):
    result = cli("bench", str(grid), "--runs-dir", str(tmp_path), "--launcher-option", "gpus=2")
    assert result.returncode == 2 and "--launcher local takes no options" in result.stderr
    result = cli("bench", str(grid), "--runs-dir", str(tmp_path), "--launcher", "slurm")
    assert result.returncode == 2 and "expected one of local, submitit" in result.stderr


@pytest.mark.parametrize("sacct, state", [("PENDING", "queued"), ("RUNNING", "running"), ("TIMEOUT", "failed"),
                                          ("CANCELLED by 0", "failed")])
def test_slurm_job_states_from_sacct(tmp_path, sacct, state):
    """A SLURM job without a result file is judged by what sacct says of it (a stand-in sacct here)."""
    job_id = str(900000 + ["PENDING", "RUNNING", "TIMEOUT", "CANCELLED by 0"].index(sacct))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text(f"#!/bin/sh\nprintf 'JobID|State|NodeList\\n{job_id}|{sacct}|node1\\n'\n")
    (fake / "sacct").chmod(0o755)
    entry = {"job_id": job_id, "cluster": "slurm", "folder": str(tmp_path)}
    with mock.patch.dict(os.environ, {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}):
        found, detail = job_state(entry)
    assert found == state
    if state == "failed":
        assert sacct.split()[0] in detail and str(tmp_path / f"{job_id}_0_log.err") in detail


def test_an_unreadable_ledger_is_named(grid, tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "jobs.json").write_text("[1, 2")
    result = cli("bench", str(grid), "--runs-dir", str(tmp_path), "--status")
    assert result.returncode == 2 and f"{tmp_path / 'jobs' / 'jobs.json'} is not a readable ledger" in result.stderr


def test_no_wait_refuses_a_report_it_could_not_write(grid, tmp_path):
    result = cli("bench", str(grid), "--runs-dir", str(tmp_path / "runs"), *SUBMITIT_LOCAL, "--no-wait",
                 "--report", str(tmp_path / "report.md"))
    assert result.returncode == 2 and "--report needs the grid's runs finished" in result.stderr
    assert not (tmp_path / "runs").exists()
