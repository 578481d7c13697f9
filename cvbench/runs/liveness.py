"""Whether a run whose record says ``running`` still runs, or died without saying so (SIGKILL, power cut).

A running record names its owner, the process that writes it (``"owner"``:
host name, pid, and where the platform tells, the boot and the process's
start time), and a ``"heartbeat"``, the UTC time the owner last rewrote it:
at the start and every :data:`BEAT_EVERY` seconds while it works
(:class:`Heartbeat`). A listing decides:

- on the owner's own machine (same host name and boot), the run is dead when
  its pid is gone, a zombie, or now another process (its start time
  differs): the pid answers at once, whatever the heartbeat says;
- from another machine (a shared runs folder), the run is dead when its
  heartbeat is older than :data:`STALE_AFTER` seconds;
- a record without an owner (written before cvbench recorded one) cannot be
  judged and stays ``running``.

Nothing here writes a record: a dead run is shown as dead, and its record
stays as the run left it, so a misjudged run loses nothing.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import threading
from functools import cache
from pathlib import Path
from typing import Any, Callable

BEAT_EVERY = 30.0
"""Seconds between two heartbeats of a working run."""
STALE_AFTER = 300.0
"""Seconds without a heartbeat after which a run owned by another machine counts as dead (ten missed beats:
room for a busy file server and clocks a little apart)."""

RUNNING, DEAD, ALIVE, UNKNOWN = "running", "dead", "alive", "unknown"


@cache
def _boot_id() -> str | None:
    """This boot of this machine (Linux); None where the platform does not tell."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of a process (Linux ``/proc``); None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces
    return fields[0], fields[19]


def owner() -> dict[str, Any]:
    """This process as a record's owner: host name, pid, boot id and process start (None where unknown)."""
    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot": _boot_id(),
            "process_start": stat[1] if stat else None}


def now() -> str:
    """The current UTC time as a heartbeat stores it (ISO 8601, seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_local(owner_: dict[str, Any]) -> bool:
    """Whether the owner ran on this machine, in this boot (where both boots are known)."""
    boot, mine = owner_.get("boot"), _boot_id()
    return owner_.get("host") == socket.gethostname() and (boot is None or mine is None or boot == mine)


def _process_state(owner_: dict[str, Any]) -> str:
    """:data:`ALIVE` or :data:`DEAD` for an owner on this machine (:data:`UNKNOWN` where signals do not tell)."""
    pid = owner_.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or os.name != "posix":
        return UNKNOWN
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the pid exists
    except ProcessLookupError:
        return DEAD
    except PermissionError:
        pass  # it exists, owned by another user
    except (OverflowError, ValueError):  # no pid this machine could have: a hand-edited record
        return UNKNOWN
    stat = _proc_stat(pid)
    if stat is None:
        return ALIVE  # no /proc (macOS): the pid exists, which is all this platform says cheaply
    state, started = stat
    if state in ("Z", "X"):  # exited, not yet reaped by its parent
        return DEAD
    recorded = owner_.get("process_start")
    return DEAD if recorded is not None and str(recorded) != started else ALIVE


def _heartbeat_age(record: dict[str, Any], at: _dt.datetime | None = None) -> float | None:
    """Seconds since the record's heartbeat; None without a readable one."""
    try:
        beat = _dt.datetime.fromisoformat(str(record["heartbeat"]))
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=_dt.timezone.utc)
        return ((at or _dt.datetime.now(_dt.timezone.utc)) - beat).total_seconds()
    except (KeyError, ValueError, OverflowError):
        return None


def liveness(record: dict[str, Any], at: _dt.datetime | None = None) -> str:
    """:data:`ALIVE`, :data:`DEAD` or :data:`UNKNOWN` for a record saying running (see the module's rules).

    ``at`` is the time to judge the heartbeat against (now by default).
    """
    owner_ = record.get("owner")
    if not isinstance(owner_, dict):
        return UNKNOWN
    if _is_local(owner_):
        state = _process_state(owner_)
        if state != UNKNOWN:
            return state
    age = _heartbeat_age(record, at)
    if age is None:
        return UNKNOWN
    return DEAD if age > STALE_AFTER else ALIVE


def resume_command(stage: str, run_dir: str | Path) -> str:
    """The command that continues a run in ``run_dir`` (``cvbench run``, or ``pretrain``/``train`` for those)."""
    return f"cvbench {stage} --resume {run_dir}"


def judged(record: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """The record for a listing: a ``running`` one whose owner died becomes ``dead`` with its resume command."""
    if record.get("status") != RUNNING or liveness(record) != DEAD:
        return record
    return {**record, "status": DEAD, "resume": resume_command(record.get("stage") or "run", run_dir)}


def status_text(record: dict[str, Any]) -> str:
    """The status a leaderboard shows: ``dead (resume with: COMMAND)`` for a dead run, else the record's status."""
    status = record.get("status", "unknown")
    if status == DEAD and record.get("resume"):
        return f"dead (resume with: {record['resume']})"
    return status


class Heartbeat:
    """Calls ``beat`` every ``every`` seconds from a daemon thread while the ``with`` block runs.

    A thread, not the training loop, so pre-training, fine-tuning, data
    loading and evaluation all keep the run alive; it dies with its process,
    which is the point. A beat that fails to write (a full disk) is skipped:
    the run itself must not die of its heartbeat.
    """

    def __init__(self, beat: Callable[[], Any], every: float = BEAT_EVERY) -> None:
        self.beat, self.every = beat, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cvbench-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:  # noqa: BLE001  a missed beat is harmless; a traceback from a thread is not
                continue

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
