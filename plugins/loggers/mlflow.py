"""``mlflow``: a run as an MLflow run, in a local file store by default (``pip install 'cvbench[mlflow]'``)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from cvbench import Logger
from cvbench.contract.hookspecs import Register, hookimpl

STORE = "mlruns"
STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
RUN_TAG = "cvbench.run_dir"
BATCH = 100  # params per MlflowClient.log_batch call (MLflow's limit); metrics allow 1000
NAME_SPELLING = {"@": "_at_", "%": "pct"}  # R@1% -> R_at_1pct: MLflow names take letters, digits and _-. /: only


def mlflow_name(name: str) -> str:
    """A metric or param name MLflow accepts: ``R@1`` -> ``R_at_1``, ``R@1%`` -> ``R_at_1pct``, others ``_``."""
    for character, spelling in NAME_SPELLING.items():
        name = name.replace(character, spelling)
    return re.sub(r"[^\w.\- /]", "_", name)


class MLflow(Logger):
    """Log a run to MLflow: RUNS_DIR/mlruns (a file store) by default, any tracking URI with ``tracking_uri``.

    The MLflow run is named after ``--name`` or the run folder and carries
    the ``--tag`` labels; params are the flattened spec, metrics are
    ``STAGE/NAME`` with their step (``finetune/loss``, ``epoch/R_at_1``), and
    ``result.json`` and the figures are its artifacts. MLflow 3 refuses a
    file store unless ``MLFLOW_ALLOW_FILE_STORE=true``; for a ``file:`` URI
    (the default) the logger sets it for its own process. A resumed run
    continues the MLflow run its folder started.
    """

    requires = ("mlflow",)
    extra = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str = "cvbench") -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.client: Any = None
        self.run_id = ""
        self.run_dir = Path()

    def start(self, spec: Any, run_dir: Path) -> None:
        self.run_dir = run_dir.resolve()
        uri = self.tracking_uri or (self.run_dir.parent / STORE).as_uri()
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment = found.experiment_id if found is not None else self.client.create_experiment(self.experiment)
        earlier = [] if "'" in str(self.run_dir) else self.client.search_runs(
            [experiment], filter_string=f"tags.`{RUN_TAG}` = '{self.run_dir}'", max_results=1)
        if earlier:  # --resume: the same MLflow run goes on
            self.run_id = earlier[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {RUN_TAG: str(self.run_dir), **_tags(spec.tags)}
        run = self.client.create_run(experiment, run_name=spec.name or run_dir.name, tags=tags)
        self.run_id = run.info.run_id

    def log_hyperparameters(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(mlflow_name(name), str(value)[:6000]) for name, value in params.items()]
        for first in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[first:first + BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int, stage: str) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(f"{stage}/{mlflow_name(name)}", float(value), stamp, step)
                                                    for name, value in metrics.items()])

    def log_artifact(self, path: Path) -> None:
        where = path.resolve().parent.relative_to(self.run_dir) if path.resolve().is_relative_to(self.run_dir) \
            else Path()
        self.client.log_artifact(self.run_id, str(path), None if where == Path() else where.as_posix())

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, STATUS[status])


def _tags(labels: tuple[str, ...]) -> dict[str, str]:
    """``--tag`` labels as MLflow tags: ``KEY=VALUE`` as that pair, a plain label as a tag with an empty value."""
    pairs = (label.partition("=") for label in labels)
    return {mlflow_name(key): value for key, _, value in pairs}


@hookimpl
def register_loggers(register: Register) -> None:
    """Register ``mlflow``."""
    register("mlflow", MLflow, summary="an MLflow run, RUNS_DIR/mlruns by default (extra: mlflow)")
