"""Run a list of jobs in this process and in forked workers, taken from the two ends of the list.

The generator's jobs are whole cities, a few per generation: five cities on
two cores leave one core idle while the last city builds, unless the split
is even. Here the workers take cities from the front of the list and this
process takes them from the back, one at a time, until the two meet, so the
work splits wherever the cities' costs make it split. This process
builds in its own warm heap, without a worker's first page faults, and the
results of its cities need no pickling; only ``workers - 1`` processes fork.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import traceback
from typing import Any, Callable, Iterator, Sequence

# A worker's message that it has taken its last job.
_DONE = "done"


class SharedJobs:
    """``function(*job)`` for every job, in ``workers`` processes of which this one is one.

    Entering forks the workers (before any thread of the caller's, such as a
    progress display, starts); iterating runs this process's share and yields
    ``(index, result)`` pairs as jobs finish, in no fixed order; leaving ends
    the workers, also after an error or an interrupt. A worker's error is
    raised here. ``initializer`` runs first in each worker.
    """

    def __init__(self, function: Callable[..., Any], jobs: Sequence[tuple], workers: int,
                 initializer: Callable[[], Any] | None = None) -> None:
        self.function, self.jobs = function, list(jobs)
        forked = min(workers, len(self.jobs)) - 1
        if multiprocessing.current_process().daemon:  # a daemon process may not fork
            forked = 0
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._context = multiprocessing.get_context(method)
        self._ends = self._context.Array("q", [0, len(self.jobs) - 1])  # next job from the front, from the back
        self._results = self._context.Queue()
        self._running = 0
        self._processes = [
            self._context.Process(target=_work_from_the_front, daemon=True,
                                  args=(function, self.jobs, self._ends, self._results, initializer))
            for _ in range(forked)]

    def __enter__(self) -> "SharedJobs":
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._ends.get_lock():
            self._ends[0], self._ends[1] = len(self.jobs), -1  # no job left to take, for anyone
        for process in self._processes:
            if process.is_alive():
                process.terminate()
            process.join()
        self._results.close()
        self._results.join_thread()

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        self._running = len(self._processes)
        while (index := self._take_from_the_back()) is not None:
            yield from self._arrived(block=False)
            yield index, self.function(*self.jobs[index])
        while self._running:
            yield from self._arrived(block=True)

    def _take_from_the_back(self) -> int | None:
        with self._ends.get_lock():
            index = self._ends[1]
            if index < self._ends[0]:
                return None
            self._ends[1] = index - 1
            return index

    def _arrived(self, block: bool) -> Iterator[tuple[int, Any]]:
        """The workers' results waiting here (after waiting for one message when ``block``).

        A worker's last message says it stopped; an error message raises the worker's error.
        """
        while True:
            try:
                kind, payload = self._results.get(block=block, timeout=1.0 if block else None)
            except queue.Empty:
                if not block:
                    return
                self._check_alive()
                continue
            if kind == "error":
                raise payload
            if kind == _DONE:
                self._running -= 1
            else:
                yield payload
            block = False

    def _check_alive(self) -> None:
        for process in self._processes:
            if process.exitcode not in (None, 0):
                raise RuntimeError(f"a synthetic world worker process died (exit code {process.exitcode}) "
                                   "without reporting an error; out of memory?")


def _work_from_the_front(function: Callable[..., Any], jobs: list[tuple], ends: Any, results: Any,
                         initializer: Callable[[], Any] | None) -> None:
    """A worker's loop: take the next job from the front until the ends meet, sending each result."""
    if initializer is not None:
        initializer()
    try:
        while True:
            with ends.get_lock():
                index = ends[0]
                if index > ends[1]:
                    break
                ends[0] = index + 1
            results.put(("result", (index, function(*jobs[index]))))
    except BaseException as error:  # noqa: BLE001 - every failure is the caller's to raise
        error.add_note("in a synthetic world worker process:\n" + "".join(traceback.format_tb(error.__traceback__)))
        results.put(("error", _picklable(error)))
    results.put((_DONE, None))


def _picklable(error: BaseException) -> BaseException:
    """``error`` itself where it pickles, otherwise a RuntimeError carrying its traceback."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError("".join(traceback.format_exception(error)))
