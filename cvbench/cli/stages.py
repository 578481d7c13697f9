"""``cvbench run``, ``pretrain``, ``train`` and ``eval``: the pipeline and its stages."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import SpecError
from ..runner import evaluate_run, run
from .spec_options import spec_from_cli, split_values, with_spec_options

P = inspect.Parameter
COMMON = [
    P("runs_dir", P.KEYWORD_ONLY, default=typer.Option("runs", help="Folder that receives one folder per run."),
      annotation=Path),
    P("quiet", P.KEYWORD_ONLY, default=typer.Option(False, "--quiet", "-q", help="No progress bars (for scripts)."),
      annotation=bool),
]


def register(app: typer.Typer) -> None:
    @app.command("run")
    @with_spec_options(COMMON)
    def run_command(**values) -> None:
        """Pre-train (optional), fine-tune and evaluate; writes one run folder with result.json."""
        options, rest = split_values(values)
        run(spec_from_cli(options), rest["runs_dir"], rest["quiet"])

    @app.command("pretrain")
    @with_spec_options(COMMON)
    def pretrain_command(**values) -> None:
        """Only pre-train: saves checkpoints/pretrained_<branch>.safetensors for `train --aerial-init`."""
        options, rest = split_values(values)
        run(spec_from_cli(options), rest["runs_dir"], rest["quiet"], stage="pretrain", finetune_stage=False)

    @app.command("train")
    @with_spec_options(COMMON)
    def train_command(**values) -> None:
        """Fine-tune and evaluate without pre-training (branches from --ground-init / --aerial-init)."""
        options, rest = split_values(values)
        spec = spec_from_cli(options)
        if spec.pretrainer not in (None, "none"):
            raise SpecError("`cvbench train` does not pre-train; use `cvbench run`, or pass a checkpoint "
                            "from `cvbench pretrain` with --ground-init / --aerial-init")
        spec.pretrainer = "none"
        run(spec, rest["runs_dir"], rest["quiet"], stage="train")

    @app.command("eval")
    def eval_command(
        run_dir: Path = typer.Argument(..., help="A finished run folder."),
        split: Optional[str] = typer.Option(None, help="Evaluate on this split's val subset instead."),
        device: Optional[str] = typer.Option(None, help="Device (default: the run's)."),
        predictions: int = typer.Option(0, help="Also write each query's top-K references to predictions_<split>.csv."),
        quiet: bool = typer.Option(False, "--quiet", "-q"),
    ) -> None:
        """Evaluate a finished run's model again and print the metrics as JSON."""
        result = evaluate_run(run_dir, split=split, quiet=quiet, device_name=device, predictions=predictions)
        typer.echo(json.dumps(result, indent=2))
