"""Experiment trackers (``--logger``): what TensorBoard and MLflow hold after a run, read back with their own readers.

One smoke run logs to both built-ins and to a third-party logger installed as
pip leaves a package; the tests compare what each tracker holds with the
run's own ``metrics.csv`` and ``result.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import SMALL_WORLD_ARGS, cli, cli_spec, make_distribution
from cvbench.contract.hookspecs import hookimpl
from cvbench.errors import PluginError

RECORDER = """
import json
from pathlib import Path

import cvbench
from cvbench.contract.hookspecs import hookimpl


class Recorder(cvbench.Logger):
    '''Writes every call it gets to a JSON-lines file.'''

    def __init__(self, path: str):
        self.path = Path(path)

    def _note(self, *call):
        with self.path.open("a") as out:
            out.write(json.dumps(call) + "\\n")

    def start(self, spec, run_dir):
        self._note("start", Path(run_dir).name, spec.seed)

    def log_hyperparameters(self, params):
        self._note("log_hyperparameters", params)

    def log_metrics(self, metrics, step, stage):
        self._note("log_metrics", stage, step, metrics)

    def log_artifact(self, path):
        self._note("log_artifact", Path(path).name)

    def finish(self, status):
        self._note("finish", status)


@hookimpl
def register_loggers(register):
    register("recorder", Recorder)
"""


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> dict:
    """One smoke run logged to tensorboard, mlflow and a third-party recorder (about 8 s of CPU)."""
    root = tmp_path_factory.mktemp("tracked")
    site = make_distribution(root / "site", "acme-tracker", "acme_tracker", RECORDER, {"acme": "acme_tracker"})
    calls = root / "calls.jsonl"
    result = cli("run", "--preset", "smoke", *SMALL_WORLD_ARGS, "--name", "tracked", "--tag", "baseline",
                 "--tag", "lr=low", "--logger", "tensorboard", "--logger", "mlflow", "--logger", "recorder",
                 "--logger-option", f"recorder.path={calls}", "--quiet", "--runs-dir", str(root / "runs"), site=site)
    assert result.returncode == 0, result.stdout + result.stderr
    run = Path(result.stdout.strip())
    return {"run": run, "runs": root / "runs", "calls": [json.loads(line) for line in calls.read_text().splitlines()],
            "metrics": pd.read_csv(run / "metrics.csv"), "record": json.loads((run / "result.json").read_text())}


def step_losses(tracked: dict, stage: str = "finetune") -> list[float]:
    """The per-step losses of a stage the third-party recorder received, in step order."""
    steps = [(call[2], call[3]["loss"]) for call in tracked["calls"] if call[:2] == ["log_metrics", stage]]
    assert [step for step, _ in steps] == list(range(1, len(steps) + 1))
    return [loss for _, loss in steps]


def test_tensorboard_holds_every_metrics_row_and_step_loss(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(tracked["run"] / "tensorboard"))
    events.Reload()
    metrics = tracked["metrics"]
    for column in metrics.columns.drop("epoch"):  # losses, lr, R@k, AP, uniformity: every value of metrics.csv
        rows = metrics[["epoch", column]].dropna()
        logged = [(event.step, event.value) for event in events.Scalars(f"epoch/{column}")]
        assert [step for step, _ in logged] == rows["epoch"].tolist(), column
        assert [value for _, value in logged] == pytest.approx(rows[column].tolist(), rel=1e-6), column
    steps = [(event.step, event.value) for event in events.Scalars("finetune/loss")]
    assert [value for _, value in steps] == pytest.approx(step_losses(tracked), rel=1e-6)
    (epoch_loss,) = metrics.loc[metrics["epoch"] == 1, "loss"]  # the smoke preset fine-tunes one epoch
    assert sum(value for _, value in steps) / len(steps) == pytest.approx(epoch_loss, rel=1e-5)
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    spec = tracked["record"]["spec"]
    assert hparams["lr"].number_value == pytest.approx(spec["lr"]) and hparams["head"].string_value == spec["head"]


def test_mlflow_file_store_holds_the_spec_the_metrics_and_the_record(tracked, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tracked["runs"] / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("cvbench").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"  # --name
    assert run.data.tags["baseline"] == "" and run.data.tags["lr"] == "low"  # --tag baseline --tag lr=low
    spec = tracked["record"]["spec"]
    for name in ("lr", "epochs", "batch_size", "seed", "head", "backbone", "dataset", "polar"):
        assert run.data.params[name] == str(spec[name]), name
    assert run.data.params["loss"] == "soft_triplet"
    metrics = tracked["metrics"]
    for column, name in (("R@1", "R_at_1"), ("R@1%", "R_at_1pct"), ("uniformity_all", "uniformity_all"),
                         ("loss", "loss")):
        rows = metrics[["epoch", column]].dropna()
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, f"epoch/{name}"))
        assert [step for step, _ in history] == rows["epoch"].tolist(), column
        assert [value for _, value in history] == pytest.approx(rows[column].tolist()), column
    steps = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "finetune/loss"))
    assert [value for _, value in steps] == pytest.approx(step_losses(tracked))
    assert "result.json" in [item.path for item in client.list_artifacts(run.info.run_id)]
    copy = client.download_artifacts(run.info.run_id, "result.json", str(tmp_path))
    assert json.loads(Path(copy).read_text()) == tracked["record"]


def test_a_third_party_logger_gets_the_calls_in_order(tracked):
    calls, metrics = tracked["calls"], tracked["metrics"]
    order = [call[0] for call in calls]
    assert order[:2] == ["start", "log_hyperparameters"] and order[-2:] == ["log_artifact", "finish"]
    assert set(order[2:-2]) == {"log_metrics"}
    assert calls[0] == ["start", tracked["run"].name, 0] and calls[-1] == ["finish", "finished"]
    assert calls[-2] == ["log_artifact", "result.json"]
    params = calls[1][1]
    assert params["head"] == "safa" and params["loggers"] == "tensorboard,mlflow,recorder"
    assert params["logger_options.recorder.path"] == str(tracked["runs"].parent / "calls.jsonl")
    stages = [call[1] for call in calls if call[0] == "log_metrics"]  # epoch 0's row, the steps, epoch 1's row
    assert stages == ["epoch"] + ["finetune"] * len(step_losses(tracked)) + ["epoch"]
    epochs = [call for call in calls if call[:2] == ["log_metrics", "epoch"]]
    for (_, _, epoch, values), (_, row) in zip(epochs, metrics.iterrows()):
        assert epoch == row["epoch"] and values == pytest.approx(row.drop("epoch").dropna().to_dict())


def test_the_tracker_store_beside_the_runs_is_no_run(tracked):
    """MLflow keeps a copy of result.json in RUNS_DIR/mlruns: listings and the leaderboard still see one run."""
    from cvbench.runs.folder import RunFolder

    assert list((tracked["runs"] / "mlruns").rglob("result.json"))
    assert [folder.path for folder in RunFolder.all_under(tracked["runs"])] == [tracked["run"]]


@pytest.mark.parametrize("logger, module", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_a_logger_without_its_library_fails_before_any_compute(logger, module, monkeypatch, tmp_path):
    import cvbench.runs.runner as runner

    monkeypatch.setitem(sys.modules, module, None)  # what `import MODULE` meets where the extra is not installed

    def no_compute(*args, **kwargs):
        raise AssertionError("compute started")

    monkeypatch.setattr(runner, "open_dataset", no_compute)
    result = cli("run", "--preset", "smoke", "--logger", logger, "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == (f"error: --logger {logger} needs the Python package '{module}', which is not installed: "
                    f"pip install 'cvbench[{logger}]'")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, expected", [
    (("--logger", "tensorbord"), "unknown logger 'tensorbord'; did you mean 'tensorboard'?"),
    (("--logger", "mlflow", "--logger-option", "mlflow.uri=x"), "logger 'mlflow' has no option 'uri'"),
    (("--logger-option", "mlflow.experiment=x"), "--logger-option 'mlflow'.KEY=VALUE: the run uses no such logger"),
])
def test_a_bad_logger_option_fails_before_any_compute(args, expected, monkeypatch, tmp_path):
    import cvbench.runs.runner as runner

    monkeypatch.setattr(runner, "open_dataset", lambda *a, **k: pytest.fail("compute started"))
    result = cli("run", "--preset", "smoke", *args, "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


class Calls:
    """A logger that keeps its calls; ``fail`` names the one call that raises."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __getattr__(self, method: str):
        def call(*args):
            self.calls.append(method)
            if method == self.fail:
                raise OSError("the tracking server is down")
        return call


def test_only_rank_0_logs(registry, monkeypatch, tmp_path):
    from cvbench.nn import distributed
    from cvbench.runs.trackers import Trackers

    made: list[Calls] = []

    class Plugin:
        @hookimpl
        def register_loggers(self, register):
            register("calls", lambda: made.append(Calls()) or made[-1])

    registry.add(Plugin(), source="test-calls")
    spec = cli_spec(logger=["calls"])
    for rank, expected in ((1, []), (0, ["start", "log_hyperparameters", "log_metrics", "finish"])):
        monkeypatch.setattr(distributed, "rank", lambda: rank)
        trackers = Trackers.from_spec(spec)
        trackers.start(spec, tmp_path)
        trackers.log_epoch({"epoch": 0, "R@1": 1.0})
        trackers.end(tmp_path, "finished")
        assert made[-1].calls == expected, rank


def test_a_failing_tracker_is_named_and_dropped_while_the_others_go_on(capsys, tmp_path):
    from cvbench.runs.trackers import Trackers

    broken, fine = Calls(fail="log_metrics"), Calls()
    trackers = Trackers({"broken": broken, "fine": fine})
    trackers.started = True
    for epoch in (0, 1):
        trackers.log_epoch({"epoch": epoch, "R@1": 1.0})
    trackers.end(tmp_path, "finished")
    assert broken.calls == ["log_metrics", "finish"]  # dropped after its failure; finish lets it close its files
    assert fine.calls == ["log_metrics", "log_metrics", "finish"]
    warning = " ".join(capsys.readouterr().err.split())
    assert "warning: logger 'broken' failed in log_metrics(): OSError: the tracking server is down" in warning


def test_loggers_are_not_part_of_what_defines_a_result():
    """Two runs that differ only in their trackers are one setting: one bench row, one leaderboard group."""
    from cvbench.bench.scheduler import identity
    from cvbench.runs.run_settings import GROUP_ALL_FIELDS, OPTION_FIELDS
    from cvbench.training.checkpoint import weight_fields

    plain = cli_spec().to_dict()
    tracked = {**plain, "loggers": ["mlflow"], "logger_options": {"mlflow": {"experiment": "thesis"}}}
    assert identity(plain) == identity(tracked)
    fields = {"loggers", "logger_options"}
    assert not fields & {*GROUP_ALL_FIELDS, *OPTION_FIELDS, *weight_fields()}


def test_the_loss_monitor_hands_each_step_to_the_trackers_numbered_across_epochs():
    """Steps are read in batches (every 3 here, as every 25 on a GPU) yet reach the trackers one by one, in order."""
    import torch

    from cvbench.training.loop import LossMonitor

    seen: list[tuple[int, dict[str, float]]] = []
    monitor = LossMonitor("fine-tuning", every=3)
    monitor.on_step = lambda step, values: seen.append((step, values))
    losses = [0.5, 0.25, 1.0, 2.0]
    for epoch in (1, 2):
        monitor.reset()
        for batch, loss in enumerate(losses, 1):
            if monitor.add((epoch, batch), torch.tensor(loss), {"triplet": torch.tensor(2 * loss)}):
                monitor.flush()
        monitor.means()
    assert [step for step, _ in seen] == list(range(1, 9))
    assert [values for _, values in seen] == [{"loss": loss, "triplet": 2 * loss} for loss in losses * 2]
    assert monitor.state()["steps"] == 8  # saved with a training state: a resumed run counts on from there


def test_figures_reach_both_trackers_and_a_resumed_run_continues_its_mlflow_run(registry, monkeypatch, tmp_path):
    """A run folder's figures (here one `cvbench analyze` would write) become a TensorBoard image and an MLflow
    artifact in the same sub-folder; starting again on the same folder (``--resume``) reopens the same MLflow run."""
    import numpy as np
    from mlflow.tracking import MlflowClient
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cvbench.runs.assemble import resolve_spec
    from cvbench.runs.trackers import Trackers

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run = tmp_path / "runs" / "20260101-000000-run-x"
    (run / "analysis").mkdir(parents=True)
    (run / "result.json").write_text("{}")
    Image.fromarray(np.full((6, 8, 3), 200, np.uint8)).save(run / "analysis" / "curves.png")
    (run / "checkpoints").mkdir()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(run / "checkpoints" / "not_a_figure.png")
    spec = resolve_spec(cli_spec(preset="smoke"))
    for status in ("interrupted", "finished"):
        trackers = Trackers({name: registry.create("logger", name) for name in ("tensorboard", "mlflow")})
        trackers.start(spec, run)
        trackers.end(run, status)
        assert not trackers.failures
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert events.Tags()["images"] == ["figures/curves"]
    (image,) = {(event.width, event.height) for event in events.Images("figures/curves")}
    assert image == (8, 6)
    client = MlflowClient(tracking_uri=(tmp_path / "runs" / "mlruns").as_uri())
    (tracked,) = client.search_runs([client.get_experiment_by_name("cvbench").experiment_id])
    assert tracked.info.status == "FINISHED" and tracked.info.run_name == run.name
    assert [item.path for item in client.list_artifacts(tracked.info.run_id, "analysis")] == ["analysis/curves.png"]


def test_a_duck_typed_logger_needs_only_start_and_log_metrics(registry, tmp_path):
    from cvbench.runs.trackers import Trackers

    class Minimal:  # subclasses nothing: the engine gives it Logger's defaults for the rest
        def __init__(self):
            self.metrics = []

        def start(self, spec, run_dir):
            pass

        def log_metrics(self, metrics, step, stage):
            self.metrics.append((stage, step, metrics))

    class Plugin:
        @hookimpl
        def register_loggers(self, register):
            register("minimal", Minimal)
            register("broken", lambda: object())

    registry.add(Plugin(), source="test-minimal")
    logger = registry.create("logger", "minimal")
    (run_dir := tmp_path / "run").mkdir()
    (run_dir / "result.json").write_text("{}")
    trackers = Trackers({"minimal": logger})
    trackers.start(cli_spec(), run_dir)
    trackers.log_epoch({"epoch": 2, "R@1": 50.0, "note": "text is no metric"})
    trackers.end(run_dir, "finished")
    assert not trackers.failures and logger.metrics == [("epoch", 2, {"R@1": 50.0})]
    with pytest.raises(PluginError, match=r"logger 'broken' .* expected an object with start\(\) and log_metrics\(\)"):
        registry.create("logger", "broken")


def test_pre_training_hands_each_step_loss_to_the_trackers(tmp_path):
    """Pre-training's steps reach ``on_step`` numbered from 1; their mean is the epoch loss the record keeps."""
    import numpy as np
    import torch

    from cvbench.data.images import ArrayImages
    from cvbench.data.loaders import readers
    from cvbench.runs.assemble import build_model, resolve_spec
    from cvbench.training.pretrain import pretrain_backbone

    spec = resolve_spec(cli_spec(preset="smoke", pretrainer="simsiam", pretrain_batch_size=8))
    images = ArrayImages(np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    seen: list[tuple[int, dict[str, float]]] = []
    backbone = build_model(spec).branch("aerial").backbone
    evidence = pretrain_backbone(spec, "aerial", backbone, images, readers(spec)["aerial"], torch.device("cpu"),
                                 torch.Generator().manual_seed(0), None, tmp_path / "aerial.safetensors",
                                 on_step=lambda step, values: seen.append((step, values)))
    assert [step for step, _ in seen] == [1, 2] and [set(values) for _, values in seen] == [{"loss"}] * 2
    assert sum(values["loss"] for _, values in seen) / 2 == pytest.approx(evidence["losses"][0])
