"""Jobs shared between this process and forked workers: each run once, results and errors returned here."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from cvbench_plugins.datasets.synthetic.shared_jobs import SharedJobs

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def _square_with_pid(value: int, pause: float = 0.0) -> tuple[int, int]:
    time.sleep(pause)
    return value * value, os.getpid()


def _fail_on(value: int, bad: int, parent: int) -> int:
    if value == bad:
        raise ValueError(f"job {value} is bad")
    time.sleep(0.5 if os.getpid() == parent else 0.05)  # time for the worker to start and take a job
    return value


@pytest.mark.parametrize("workers, count", [(1, 5), (2, 5), (3, 7), (2, 1), (2, 0)])
def test_every_job_runs_once_and_its_result_comes_back_under_its_index(workers, count):
    with SharedJobs(_square_with_pid, [(value, 0.01) for value in range(count)], workers) as jobs:
        results = list(jobs)
    assert sorted(index for index, _ in results) == list(range(count))
    assert {index: square for index, (square, _) in results} == {value: value * value for value in range(count)}
    if workers == 1 or count <= 1:
        assert {pid for _, (_, pid) in results} <= {os.getpid()}  # nothing forked


def test_this_process_takes_jobs_from_the_back_and_the_workers_from_the_front():
    # This process's first job (the last) is slow: the worker takes all the others meanwhile and stops first.
    jobs = [(value, 0.0) for value in range(6)] + [(6, 1.0)]
    with SharedJobs(_square_with_pid, jobs, workers=2) as shared:
        pids = {index: pid for index, (_, pid) in shared}
    assert pids[6] == os.getpid()
    assert all(pids[index] != os.getpid() for index in range(6))


def test_a_workers_error_is_raised_here_with_the_workers_traceback_and_the_workers_end():
    shared = SharedJobs(_fail_on, [(value, 0, os.getpid()) for value in range(4)], workers=2)
    with pytest.raises(ValueError, match="job 0 is bad") as raised:
        with shared as jobs:
            list(jobs)
    assert "in a synthetic world worker process" in "".join(raised.value.__notes__)
    assert not any(process.is_alive() for process in shared._processes)


def test_an_error_in_this_processs_own_job_ends_the_workers():
    shared = SharedJobs(_fail_on, [(value, 9, os.getpid()) for value in range(10)], workers=2)
    with pytest.raises(ValueError, match="job 9 is bad"):
        with shared as jobs:
            list(jobs)
    assert not any(process.is_alive() for process in shared._processes)


def _exit_in_a_worker(value: int, parent: int) -> int:
    if os.getpid() != parent:
        os._exit(3)
    time.sleep(0.5)  # time for the worker to start and take a job
    return value


def test_a_worker_that_dies_without_a_word_is_named_not_waited_for():
    with pytest.raises(RuntimeError, match="worker process died \\(exit code 3\\)"):
        with SharedJobs(_exit_in_a_worker, [(value, os.getpid()) for value in range(3)], workers=2) as jobs:
            list(jobs)
