"""How the runs of a grid get done: one after another here (``local``, the default) or as cluster jobs.

:func:`cvbench.bench.scheduler.run_bench` plans the grid (what is missing,
what each run's spec is) and hands each missing stage and run to a
launcher; both launchers write the same run folders into the same results
folder, so a grid may be started with one and finished with the other.

- ``local``: runs each stage and row in this process (:class:`LocalLauncher`).
- ``submitit``: one SLURM job per stage and row
  (:mod:`cvbench.bench.submitit_launcher`), chosen with ``--launcher submitit``
  and configured with ``--launcher-option KEY=VALUE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

from ..errors import CvbenchError
from ..progress import make_progress
from ..runs.folder import RunFolder

if TYPE_CHECKING:
    from .scheduler import BenchOutcome, Job

LAUNCHERS = ("local", "submitit")


class Launcher(Protocol):
    """What the scheduler asks of a launcher. ``waits`` False: submit and return (the runs finish later)."""

    name: str
    waits: bool

    def check(self, runs_dir: Path) -> None:
        """Fail, naming what to fix, before anything runs or is submitted."""

    def run_stage(self, job: "Job", runs_dir: Path, folder: Path, quiet: bool) -> Path | None:
        """Run (or submit) a stage into ``folder``; its run folder, or None when it was submitted, not waited for."""

    def run_rows(self, jobs: list["Job"], runs_dir: Path, outcome: "BenchOutcome", quiet: bool) -> None:
        """Run (or submit) each row's run into ``runs_dir/<row>``, counting runs and failures in ``outcome``."""


class LocalLauncher:
    """Every stage and run in this process, one after another, with one progress bar."""

    name = "local"
    waits = True

    def check(self, runs_dir: Path) -> None:
        return None

    def run_stage(self, job: "Job", runs_dir: Path, folder: Path, quiet: bool) -> Path:
        from ..runs.runner import run

        return run(job.spec, folder, quiet=True, stage="pretrain", finetune_stage=False)

    def run_rows(self, jobs: list["Job"], runs_dir: Path, outcome: "BenchOutcome", quiet: bool) -> None:
        """Each run in turn; a failing run is recorded in ``outcome`` and the grid goes on."""
        from ..runs.runner import run

        with make_progress(quiet) as progress:
            task = progress.add_task("bench", total=len(jobs), info="")
            for job in jobs:
                progress.update(task, info=f"{job.row} seed {job.seed}")
                try:
                    folder = run(job.spec, runs_dir / job.row, quiet=True)
                    record = RunFolder(folder).read_result()
                    outcome.ran += 1
                    values = "  ".join(f"{k} {v:.2f}" for k, v in list(record["metrics"].items())[:3])
                    progress.console.log(f"{job.row} seed {job.seed}: {values} "
                                         f"({record['timings']['total_s']:.0f} s)")
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # a failing run is recorded and the grid goes on
                    outcome.failed.append((job.row, job.seed, f"{type(exc).__name__}: {exc}"))
                    progress.console.log(f"[red]{job.row} seed {job.seed} failed:[/] {exc}")
                progress.advance(task)


def parse_options(values: Sequence[str]) -> dict[str, str]:
    """``--launcher-option`` values (each ``KEY=VALUE`` or several joined by commas) as one dict; a key given
    twice keeps its last value, as a repeated flag does."""
    options: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            key, sep, setting = part.partition("=")
            if not sep or not key.strip() or not setting.strip():
                raise CvbenchError(f"--launcher-option {value}: expected KEY=VALUE pairs separated by commas, "
                                   "such as partition=gpu,gpus=1,time=36:00:00")
            options[key.strip()] = setting.strip()
    return options


def make_launcher(name: str, options: Sequence[str] = (), wait: bool = True) -> Launcher:
    """The launcher ``--launcher NAME --launcher-option ... [--no-wait]`` asks for, its options checked."""
    if name not in LAUNCHERS:
        raise CvbenchError(f"--launcher {name}: expected one of {', '.join(LAUNCHERS)}")
    parsed = parse_options(options)
    if name == "local":
        if parsed:
            raise CvbenchError(f"--launcher-option {next(iter(parsed))}: --launcher local takes no options; they "
                               "are for --launcher submitit")
        if not wait:
            raise CvbenchError("--no-wait: the local launcher runs the grid in this process; --no-wait is for "
                               "--launcher submitit")
        return LocalLauncher()
    from .submitit_launcher import SubmititLauncher

    return SubmititLauncher(parsed, wait)
