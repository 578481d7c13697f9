"""``cvbench run``, ``pretrain``, ``train`` and ``eval``: the pipeline and its stages."""

from __future__ import annotations

import inspect
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

import typer
from rich.text import Text

from ..errors import CvbenchError, SpecError
from ..progress import STDERR
from ..spec import GROUPS, MACHINE, RunSpec
from .spec_options import spec_from_cli, split_values, with_spec_options

P = inspect.Parameter
COMMON = [
    P("runs_dir", P.KEYWORD_ONLY, default=typer.Option("runs", help="Folder that receives one folder per run.",
                                                           rich_help_panel=MACHINE),
      annotation=Path),
    P("quiet", P.KEYWORD_ONLY, default=typer.Option(
        False, "--quiet/--no-quiet", "-q", help="No progress bars or log lines: stdout holds only the run folder "
                                                "(RUN=$(cvbench run -q ...)).", rich_help_panel=MACHINE),
      annotation=bool),
    P("resume", P.KEYWORD_ONLY, default=typer.Option(
        None, help="Continue an interrupted run in its folder, with its own options (only --device and --workers "
                   "may change).", rich_help_panel=MACHINE), annotation=Optional[Path]),
]
CONFIG = [
    P("config", P.KEYWORD_ONLY, default=typer.Option(
        None, help="A TOML file of this run's options, in the schema of a benchmark grid row (docs/benchmarks.md); "
                   "flags given here override it.", rich_help_panel=GROUPS[0]), annotation=Optional[Path]),
    P("print_config", P.KEYWORD_ONLY, default=typer.Option(
        False, "--print-config/--no-print-config",
        help="Print the resolved options as a --config file and exit without running.",
        rich_help_panel=GROUPS[0]), annotation=bool),
    P("context", P.KEYWORD_ONLY, annotation=typer.Context),
]
RESUMABLE = {"device", "workers"}


def _spec(options: dict, rest: dict) -> RunSpec:
    """The run's spec from its flags, over ``--config``'s options when given.

    With a config file, the spec is resolved here once, so that a value the
    file holds that no run accepts (``preset = ""``) is an error naming the
    file, before anything else starts.
    """
    spec = spec_from_cli(options, rest["config"], rest["context"])
    if rest["config"] is not None:
        from ..runs.assemble import resolve_spec

        try:
            resolve_spec(spec)
        except CvbenchError as exc:
            exc.args = (f"{rest['config']} (with the flags given): {exc}",)
            raise
    return spec


def _printed(spec: RunSpec, rest: dict) -> bool:
    """``--print-config``: print the resolved spec as a config file instead of running; True when it did."""
    if not rest["print_config"]:
        return False
    from ..runs.assemble import resolve_spec
    from ..spec.config import dump_config

    typer.echo(dump_config(resolve_spec(spec)), nl=False)
    return True


def run(spec: RunSpec, runs_dir: Path, quiet: bool, **stage: Any) -> Path:
    """Run the pipeline (:func:`cvbench.runs.runner.run`), then print the run folder (:func:`_print_folder`)."""
    from ..runs.runner import run as run_pipeline  # torch: imported by the commands that run, not by --help

    return _print_folder(run_pipeline(spec, runs_dir, quiet, **stage), quiet)


def resume_run(run_dir: Path, quiet: bool, device: str | None, workers: int | None) -> Path:
    """Continue an interrupted run (:func:`cvbench.runs.runner.resume_run`), then print its folder."""
    from ..runs.runner import resume_run as resume_pipeline

    return _print_folder(resume_pipeline(run_dir, quiet, device, workers), quiet)


def _print_folder(folder: Path, quiet: bool) -> Path:
    """The run folder, alone on stdout, for scripts: ``RUN=$(cvbench run -q ...)``.

    Always when quiet or piped; on a terminal the log line on stderr already names it.
    """
    if quiet or not sys.stdout.isatty():
        typer.echo(str(folder))
    return folder


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C or SIGTERM: say where the run stopped and how to resume it, and exit 130 as a shell would."""
    try:
        yield
    except KeyboardInterrupt as exc:
        STDERR.print(Text("interrupted", style="yellow") + (Text(f": {exc}") if str(exc) else Text("")), soft_wrap=True)
        raise typer.Exit(130) from None


def _resume(options: dict, rest: dict) -> bool:
    """Continue ``--resume RUN_DIR`` if given (refusing other run options); False when not resuming."""
    if rest["resume"] is None:
        return False
    if str(rest["resume"]).startswith("-"):
        raise SpecError(f"--resume {rest['resume']}: expected the run folder to continue, not an option; put the "
                        "folder right after --resume (cvbench run --resume RUN_DIR -q)")
    spec, default = spec_from_cli(options).to_dict(), RunSpec().to_dict()
    changed = sorted(name for name, value in spec.items()
                     if name not in RESUMABLE and value != default[name] and value not in (None, {}, []))
    changed += ["config"] if rest.get("config") is not None else []
    if changed:
        raise SpecError(f"--resume continues a run with the options it was started with; drop "
                        f"{', '.join('--' + name.replace('_', '-') for name in changed)}")
    resume_run(rest["resume"], rest["quiet"], options.get("device") if options.get("device") != "auto" else None,
               options.get("workers") or None)
    return True


def register(app: typer.Typer) -> None:
    @app.command("run")
    @with_spec_options(COMMON + CONFIG)
    def run_command(**values) -> None:
        """Pre-train (optional), fine-tune and evaluate; writes one run folder with result.json."""
        options, rest = split_values(values)
        with _interruptible():
            if not _resume(options, rest) and not _printed(spec := _spec(options, rest), rest):
                run(spec, rest["runs_dir"], rest["quiet"])

    @app.command("pretrain")
    @with_spec_options(COMMON + CONFIG)
    def pretrain_command(**values) -> None:
        """Only pre-train: saves checkpoints/pretrained_<branch>.safetensors for `train --aerial-init`."""
        options, rest = split_values(values)
        with _interruptible():
            if not _resume(options, rest) and not _printed(spec := _spec(options, rest), rest):
                run(spec, rest["runs_dir"], rest["quiet"], stage="pretrain", finetune_stage=False)

    @app.command("train")
    @with_spec_options(COMMON + CONFIG)
    def train_command(**values) -> None:
        """Fine-tune and evaluate without pre-training (branches from --ground-init / --aerial-init)."""
        options, rest = split_values(values)
        with _interruptible():
            if _resume(options, rest):
                return
            spec = _spec(options, rest)
            if spec.pretrainer not in (None, "none"):
                raise SpecError("`cvbench train` does not pre-train; use `cvbench run`, or pass a checkpoint "
                                "from `cvbench pretrain` with --ground-init / --aerial-init")
            spec.pretrainer = "none"
            if not _printed(spec, rest):
                run(spec, rest["runs_dir"], rest["quiet"], stage="train")

    @app.command("eval")
    def eval_command(
        run_dir: Path = typer.Argument(..., help="A finished run folder."),
        split: Optional[str] = typer.Option(None, help="Evaluate on this split's val subset instead."),
        device: Optional[str] = typer.Option(None, help="Device (default: the run's)."),
        predictions: int = typer.Option(
            0, metavar="K", help="Also write each query's top-K tiles to predictions_<split>.csv: names, scores and, "
            "where the dataset has them, coordinates and the error in metres (docs/runs.md)."),
        index: Literal["exact", "hnsw", "ivf"] = typer.Option(
            "exact", help="exact, or an approximate faiss index for city-scale galleries: hnsw or ivf "
            "(its metrics replace the exact ones; the JSON gains an \"index\" report, see docs/metrics.md)."),
        index_option: Optional[list[str]] = typer.Option(
            None, "--index-option", metavar="KEY=VALUE",
            help="An index option, repeatable: hnsw neighbors, ef_construction, ef_search; ivf nlist, nprobe."),
        quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bars."),
    ) -> None:
        """Evaluate a finished run's model again and print the metrics as JSON."""
        from ..evaluation.retrieval import parse_index_options
        from ..runs.reevaluate import evaluate_run

        try:
            options = parse_index_options(index_option or [])
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        result = evaluate_run(run_dir, split=split, quiet=quiet, device_name=device, predictions=predictions,
                              index=index, index_options=options)
        typer.echo(json.dumps(result, indent=2))
