"""``tensorboard``: a run's losses, metrics, spec and figures as TensorBoard event files.

An optional extra: ``pip install 'cvbench[tensorboard]'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cvbench import Logger
from cvbench.contract.hookspecs import Register, hookimpl

FOLDER = "tensorboard"


class TensorBoard(Logger):
    """Write TensorBoard event files: RUN/tensorboard/ by default, or LOG_DIR/RUN_NAME with option ``log_dir``.

    Scalars are tagged ``STAGE/NAME`` (``finetune/loss`` per step,
    ``epoch/R@1`` per epoch); the spec is logged as hyper-parameters (the
    HParams tab) and as a text table; PNG figures appear as images and
    ``result.json`` as text.
    """

    requires = ("tensorboard",)
    extra = "tensorboard"

    def __init__(self, log_dir: str | None = None) -> None:
        self.log_dir = log_dir
        self.writer: Any = None

    def start(self, spec: Any, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(self.log_dir).expanduser() / run_dir.name if self.log_dir else run_dir / FOLDER
        self.writer = SummaryWriter(str(folder))

    def log_hyperparameters(self, params: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(params, {}):
            self.writer.file_writer.add_summary(summary)
        rows = "\n".join(f"| {name} | {value} |" for name, value in params.items())
        self.writer.add_text("spec", f"| option | value |\n| --- | --- |\n{rows}")

    def log_metrics(self, metrics: dict[str, float], step: int, stage: str) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"{stage}/{name}", value, step)

    def log_artifact(self, path: Path) -> None:
        if path.suffix.lower() == ".png":
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image(f"figures/{path.stem}", pixels, dataformats="HWC")
        elif path.suffix.lower() == ".json":
            text = json.dumps(json.loads(path.read_text()), indent=2)
            self.writer.add_text(path.name, "\n".join(f"    {line}" for line in text.splitlines()))

    def finish(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()


@hookimpl
def register_loggers(register: Register) -> None:
    """Register ``tensorboard``."""
    register("tensorboard", TensorBoard, summary="TensorBoard event files in RUN/tensorboard (extra: tensorboard)")
