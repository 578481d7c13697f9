"""A run killed outright (SIGKILL) still says ``running``: its owner and heartbeat tell it from a live one.

The records here are written by hand in the run folder's real layout, with
the owner of a process that exited, of this process, or of another machine;
the run that really records its owner is the session run of
``tests/test_resume.py`` (``test_a_run_records_its_owner_and_heartbeat``).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli

from cvbench.errors import CvbenchError
from cvbench.runs import liveness, runner
from cvbench.runs.assemble import resolve_spec
from cvbench.runs.folder import RunFolder
from cvbench.runs.records import RunRecorder
from cvbench.spec import RunSpec

NAME = "20261205-120000-run-synthetic-none-safa-s0"


def _exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _ago(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _running_record(runs: Path, owner: dict, heartbeat: str, name: str = NAME) -> Path:
    """A run folder as a run leaves it while it runs: spec.json and a running result.json naming its owner."""
    run_dir = runs / name
    (run_dir / "checkpoints").mkdir(parents=True)
    spec = resolve_spec(RunSpec(preset="smoke")).to_dict()
    (run_dir / "spec.json").write_text(json.dumps(spec))
    (run_dir / "result.json").write_text(json.dumps({
        "cvbench_result": 1, "run": name, "stage": "run", "status": "running", "spec": spec,
        "started": _ago(60), "owner": owner, "heartbeat": heartbeat}))
    return run_dir


def _here(pid: int, process_start: str | None = None) -> dict:
    return {**liveness.owner(), "pid": pid, "process_start": process_start}


def _elsewhere() -> dict:
    return {"host": socket.gethostname() + "-elsewhere", "pid": 1, "boot": None, "process_start": None}


def test_a_running_record_whose_process_exited_is_shown_dead_with_the_resume_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _running_record(Path("runs"), _here(_exited_pid()), liveness.now())  # a fresh heartbeat: the pid decides
    expected = f"dead (resume with: cvbench run --resume {Path('runs') / NAME})"
    markdown = cli("leaderboard", "runs", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert expected in markdown.stdout and "Unfinished or failed runs" in markdown.stdout
    terminal = cli("leaderboard", "runs")
    assert terminal.returncode == 0, terminal.stderr
    assert expected in terminal.stdout and "no finished runs" in terminal.stdout
    on_disk = json.loads((Path("runs") / NAME / "result.json").read_text())
    assert on_disk["status"] == "running"  # the listing judges; the record stays as the run left it


def test_a_record_owned_by_this_live_process_is_still_running_and_resume_refuses_it(tmp_path):
    run_dir = _running_record(tmp_path, liveness.owner(), _ago(3600))  # an old heartbeat: the live pid decides
    record = RunFolder(run_dir).record()
    assert record["status"] == "running" and "resume" not in record
    with pytest.raises(CvbenchError, match=r"is still running \(pid \d+ on .*\); resume it only once"):
        runner.resume_run(run_dir, quiet=True)


def test_a_reused_pid_is_a_dead_run(tmp_path):
    """This process's pid, but a different start time: the pid now belongs to another process."""
    run_dir = _running_record(tmp_path, _here(liveness.owner()["pid"], process_start="1"), liveness.now())
    if liveness.owner()["process_start"] is None:
        pytest.skip("this platform does not tell a process's start time")
    assert RunFolder(run_dir).record()["status"] == "dead"


def test_a_dead_run_on_this_host_resumes_past_the_liveness_check(tmp_path):
    run_dir = _running_record(tmp_path, _here(_exited_pid()), liveness.now())
    with pytest.raises(CvbenchError, match="nothing to resume"):  # no state.pt: the next check, not "running"
        runner.resume_run(run_dir, quiet=True)


def test_another_host_is_judged_by_its_heartbeat(tmp_path):
    stale = _running_record(tmp_path, _elsewhere(), _ago(liveness.STALE_AFTER + 60), name="stale")
    fresh = _running_record(tmp_path, _elsewhere(), _ago(10), name="fresh")
    assert RunFolder(stale).record()["status"] == "dead"
    assert RunFolder(stale).record()["resume"] == f"cvbench run --resume {stale}"
    assert RunFolder(fresh).record()["status"] == "running"
    with pytest.raises(CvbenchError, match="still running"):
        runner.resume_run(fresh, quiet=True)


def test_a_record_without_an_owner_cannot_be_judged_and_stays_running(tmp_path):
    run_dir = _running_record(tmp_path, _elsewhere(), liveness.now())
    record = json.loads((run_dir / "result.json").read_text())
    del record["owner"], record["heartbeat"]
    (run_dir / "result.json").write_text(json.dumps(record))
    assert liveness.liveness(record) == liveness.UNKNOWN
    assert RunFolder(run_dir).record()["status"] == "running"


def test_the_recorder_refreshes_the_heartbeat_of_a_running_record_only(tmp_path, monkeypatch):
    recorder = RunRecorder(tmp_path / "run", RunSpec(preset="smoke"), "run")
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["owner"] == liveness.owner() and record["status"] == "running"
    monkeypatch.setattr(liveness, "now", lambda: "2030-01-01T00:00:00+00:00")
    with liveness.Heartbeat(recorder.beat, every=0.01):
        deadline = time.monotonic() + 2
        while json.loads((tmp_path / "run" / "result.json").read_text())["heartbeat"] != "2030-01-01T00:00:00+00:00":
            assert time.monotonic() < deadline, "the heartbeat thread never beat"
            time.sleep(0.01)
    recorder.write_result("finished", metrics={"R@1": 1.0})
    monkeypatch.setattr(liveness, "now", lambda: "2031-01-01T00:00:00+00:00")
    recorder.beat()
    finished = json.loads((tmp_path / "run" / "result.json").read_text())
    assert finished["status"] == "finished" and finished["metrics"] == {"R@1": 1.0}
    assert finished["heartbeat"] == "2030-01-01T00:00:00+00:00"  # written with the record, never after it
