"""``cvbench bench FILE.toml``: run a benchmark grid (here or as SLURM jobs), list it with ``--dry-run``, show
where its runs stand with ``--status``, or predict how long its missing runs take with ``--estimate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import CvbenchError
from ..progress import counted


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_command(
        file: Optional[Path] = typer.Argument(None, help="Benchmark grid: a TOML file, or the name of a grid that "
                                                         "ships with cvbench (thesis_synthetic; see --list)."),
        list_grids: bool = typer.Option(False, "--list/--no-list", help="List the grids that ship with cvbench and "
                                        "exit."),
        dry_run: bool = typer.Option(False, "--dry-run/--no-dry-run",
                                     help="List every run with its resolved settings; run nothing."),
        only: Optional[list[str]] = typer.Option(None, "--only", help="Run only this row (repeatable)."),
        runs_dir: Optional[Path] = typer.Option(None, help="Results folder (default runs/bench/<file stem>)."),
        data_root: Optional[str] = typer.Option(None, "--data-root", help="The dataset folder, for every row and stage."),
        report: Optional[Path] = typer.Option(None, help="Also write the report (leaderboard, findings, figure) here."),
        quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bars."),
        launcher: str = typer.Option("local", "--launcher", help="Who runs the missing runs: local (one after "
                                     "another in this process) or submitit (one SLURM job each)."),
        launcher_option: Optional[list[str]] = typer.Option(
            None, "--launcher-option", help="KEY=VALUE for --launcher submitit, repeatable or comma-separated: "
            "partition, time (35:00:00), gpus, cpus, mem (64G), account, qos, constraint, cluster (slurm|local)."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="--no-wait: submit the jobs, print their ids and "
                                  "return (then: --status)."),
        status: bool = typer.Option(False, "--status/--no-status", help="Show each run as queued, running, "
                                    "finished or failed (from the run records and the submitted jobs); run nothing."),
        estimate: bool = typer.Option(False, "--estimate/--no-estimate", help="Predict the wall time of the missing "
                                      "runs (from finished runs, a quick measurement here, or --gpus); run nothing."),
        gpus: Optional[int] = typer.Option(None, "--gpus", help="With --estimate: on this many GPUs per run (data "
                                           "parallel), from the GPU throughputs in benchmarks/perf/results."),
    ) -> None:
        """Run each row of a grid over its seeds (skipping finished runs), then write its leaderboard.md."""
        from ..bench.launchers import make_launcher
        from ..bench.scheduler import default_runs_dir, run_bench  # torch: not for --help
        from ..bench.schema import load_bench

        if list_grids:
            _shipped()
            return
        if file is None:
            raise CvbenchError("cvbench bench needs a grid: a TOML file or the name of a shipped grid "
                               "(cvbench bench --list)")
        bench = load_bench(file)
        if data_root is not None:
            bench.defaults["data_root"] = data_root
            for options in bench.stages.values():
                options.setdefault("data_root", data_root)
        folder = runs_dir or default_runs_dir(bench)
        if dry_run:
            _list(bench, folder, only)
            return
        if status:
            _show_status(bench, folder, only)
            return
        if gpus is not None and not estimate:
            raise CvbenchError(f"--gpus {gpus}: only with --estimate (the GPUs a run gets are the launcher's "
                               "--launcher-option gpus=N)")
        if estimate:
            _show_estimate(bench, folder, only, gpus, launcher)
            return
        chosen = make_launcher(launcher, launcher_option or (), wait)
        if report is not None and not chosen.waits:
            raise CvbenchError("--report needs the grid's runs finished: give it to a call without --no-wait")
        outcome = run_bench(bench, folder, only, quiet, chosen)
        if not chosen.waits:
            _submitted(chosen, outcome, file, runs_dir)
        else:
            typer.echo(f"{counted(outcome.ran, 'run')} made, {outcome.skipped} already finished; "
                       f"wrote {outcome.leaderboard}")
        if report is not None:
            typer.echo(f"wrote {_report(bench, folder, report, quiet)}")
        if outcome.failed:
            for row, seed, error in outcome.failed:
                typer.echo(f"failed: {row} seed {seed}: {error}", err=True)
            raise typer.Exit(1)


def _shipped() -> None:
    """The shipped grids: name, title and number of rows."""
    from ..bench.schema import load_bench, shipped_grids

    table = Table(title="Grids shipped with cvbench (cvbench bench NAME)")
    for column in ("name", "rows", "title"):
        table.add_column(column)
    for name, path in shipped_grids().items():
        bench = load_bench(path)
        _row(table, name, len(bench.rows), bench.title)
    Console(width=250 if not Console().is_terminal else None).print(table)


def _list(bench, folder: Path, only) -> None:
    from ..bench.scheduler import describe, plan

    stages, jobs = plan(bench, folder, only)
    console = Console(width=250) if not Console().is_terminal else Console()
    table = Table(title=Text(f"{bench.title} ({bench.label})"))
    for column in ("row", "seed", "status", "dataset", "preset", "backbone", "head", "dim", "sizes", "epochs",
                   "settings"):
        table.add_column(column)
    for name, job in stages.items():
        if job.error is not None:  # options that do not resolve: the spec has no sizes to show
            _row(table, f"@{name}", job.seed, _status(job), "", "", "", "", "", "", "", job.error)
            continue
        _row(table, f"@{name}", job.seed, _status(job), _dataset(job.spec), job.spec.preset, job.spec.backbone, "-",
             "-", _sizes(job.spec), f"pretrain {job.spec.pretrain_epochs}", describe(job.spec))
    for job in jobs:
        spec = job.spec
        if job.error is not None:
            _row(table, job.row, job.seed, _status(job), "", "", "", "", "", "", "", job.error)
            continue
        _row(table, job.row, job.seed, _status(job), _dataset(spec), spec.preset, spec.backbone, spec.head, spec.dim,
             _sizes(spec), spec.epochs, describe(spec, job.refs))
    console.print(table)
    todo = sum(job.done is None and job.error is None for job in jobs)
    invalid = sum(job.error is not None for job in [*stages.values(), *jobs])
    console.print(Text(f"{len(jobs)} runs ({len(bench.rows) if not only else len(set(only))} rows), {todo} to run, "
                       f"{invalid} invalid; results in {folder}"))
    if invalid:
        raise typer.Exit(1)


def _show_status(bench, folder: Path, only) -> None:
    """``--status``: a table of every stage and run with its state, job and run folder or error."""
    from ..bench.status import STATES, grid_status

    found = grid_status(bench, folder, only)
    console = Console(width=250) if not Console().is_terminal else Console()
    table = Table(title=Text(f"{bench.title}: {folder}"))
    for column in ("row", "seed", "status", "job", "run folder, or error and log"):
        table.add_column(column)
    for run in found:
        _row(table, run.row, run.seed, run.state, run.job, run.detail)
    console.print(table)
    counts = [f"{sum(run.state == state for run in found)} {state}" for state in STATES
              if any(run.state == state for run in found)]
    console.print(Text(", ".join(counts)))


def _show_estimate(bench, folder: Path, only, gpus: Optional[int], launcher: str) -> None:
    """``--estimate``: each missing run's planned work and predicted seconds, with the sources, and the total."""
    from ..bench.estimate import STAGES, estimate_grid
    from ..bench.launchers import LAUNCHERS
    from ..runs.expected_time import duration

    if launcher not in LAUNCHERS:
        raise CvbenchError(f"--launcher {launcher}: expected one of {', '.join(LAUNCHERS)}")
    found = estimate_grid(bench, folder, only, gpus)
    console = Console(width=250) if not Console().is_terminal else Console()
    table = Table(title=Text(f"Estimate (not a measurement) for {bench.title} on {found.device}"))
    for column in ("row", "seed", "pretrain images", "fine-tune pairs", "embedded images", *(f"{s} s" for s in STAGES),
                   "total", "sources"):
        table.add_column(column)
    for job in found.jobs:
        work = job.work
        _row(table, job.row, job.seed, sum(work.pretrain_images.values()), work.finetune_pairs,
             f"{work.evaluations} x {work.eval_images}" + (f" + {work.other_images}" if work.other_images else ""),
             *(f"{job.seconds[s]:.1f}" if s in job.seconds else "" for s in STAGES), duration(job.total),
             _sources(job.sources))
    console.print(table)
    for row, seed, error in found.invalid:
        console.print(Text(f"invalid, not estimated: {row} seed {seed}: {error}"))
    head = f"{counted(len(found.jobs), 'run')} to make, {found.done} already finished"
    if launcher == "local":
        console.print(Text(f"{head}; estimated wall time with the local launcher (one after another): "
                           f"{duration(found.sequential())}"))
    else:
        unit = f"GPU-hours ({gpus} per job)" if gpus else f"hours of {found.device}"
        console.print(Text(f"{head}; estimated with submitit, every job at once: {duration(found.longest_job())} "
                           f"(the stages, then the longest run); {found.device_hours():.2f} {unit} in all"))
    if any(source == "measured" for job in found.jobs for kind, source in job.sources.items() if kind != "overhead"):
        load, cores = found.load
        console.print(Text(f"measured here at a load average of {load:.1f} on {cores} cores: steps measured on a busy "
                           "machine are slower than on a quiet one"))
    if gpus:
        from ..bench.estimate import DATA_PARALLEL_EFFICIENCY

        console.print(Text(f"GPU rates: benchmarks/perf/results/throughput_*.json scaled by pixels; {gpus} GPUs per "
                           f"run at an assumed {DATA_PARALLEL_EFFICIENCY:.0%} data-parallel efficiency"
                           if gpus > 1 else "GPU rates: benchmarks/perf/results/throughput_*.json scaled by pixels"))


def _sources(sources: dict[str, str]) -> str:
    """Where the rates came from: one word when every part of the run agrees, else each part's."""
    kinds: dict[str, list[str]] = {}
    for kind, source in sources.items():
        kinds.setdefault(source, []).append(kind)
    if len(kinds) == 1:
        return next(iter(kinds))
    return "; ".join(f"{source}: {', '.join(parts)}" for source, parts in kinds.items())


def _submitted(launcher, outcome, file: Path, runs_dir: Optional[Path]) -> None:
    """``--no-wait``: the jobs submitted, those still queued or running from before, and how to follow them."""
    for row, seed, job in launcher.submitted:
        typer.echo(f"submitted: {row} seed {seed}: job {job}")
    for row, seed, job in launcher.in_flight:
        typer.echo(f"already queued or running: {row} seed {seed}: job {job}")
    check = f"cvbench bench {file}{f' --runs-dir {runs_dir}' if runs_dir else ''} --status"
    typer.echo(f"{counted(len(launcher.submitted), 'job')} submitted, {counted(outcome.skipped, 'run')} already "
               "finished; "
               f"check with: {check}")
    if outcome.waiting_for:
        typer.echo(f"the rows start from stage {outcome.waiting_for}: run this command again once its job "
                   "finished to submit them")


def _row(table: Table, *cells) -> None:
    """A table row of plain text: names and errors from a grid file may hold rich markup such as "[/]"."""
    table.add_row(*(Text(str(cell)) for cell in cells))


def _status(job) -> str:
    return "invalid" if job.error is not None else "done" if job.done else "to run"


def _dataset(spec) -> str:
    return f"{spec.dataset}/{spec.split or '(default)'}"


def _sizes(spec) -> str:
    return f"{spec.ground_size[0]}x{spec.ground_size[1]}, {spec.aerial_size[0]}x{spec.aerial_size[1]}"


def _report(bench, folder: Path, out: Path, quiet: bool) -> Path:
    """The report with the embedding comparison of ``[report] compare`` (first seed) beside it."""
    figure = None
    if bench.compare:
        from ..analysis.run_analysis import compare_runs
        from ..bench.scheduler import plan

        _, jobs = plan(bench, folder, bench.compare)
        chosen = [next((j.done for j in jobs if j.row == row and j.done is not None), None) for row in bench.compare]
        if any(run is None for run in chosen):
            raise CvbenchError(f"--report: the rows {', '.join(bench.compare)} need a finished run each")
        images = out.parent / "images" / bench.name
        compare_runs(chosen, images, "before", quiet=quiet, labels=bench.compare)
        figure = (images / "embeddings_before.png").relative_to(out.parent)
    from ..bench.report import write_report  # scipy: only when a report is written

    return write_report(bench, folder, out, figure, out.parent / "images" / bench.name)
