"""``cvbench bench FILE --estimate``: planned work counted from a spec, rates from records, measurement and GPUs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SMALL_WORLD, cli

from cvbench.bench.estimate import DATA_PARALLEL_EFFICIENCY, estimate_grid
from cvbench.bench.schema import load_bench
from cvbench.runs.assemble import resolve_spec
from cvbench.runs.expected_time import plan_run
from cvbench.runs.subsets import load_data, open_dataset
from cvbench.spec import RunSpec

WORLD = "{ " + ", ".join(f"{key} = {value}" for key, value in SMALL_WORLD.items()) + " }"


def grid(tmp_path: Path, rows: str, defaults: str = "") -> Path:
    """A grid file of smoke-preset rows on the tests' small world."""
    path = tmp_path / "grid.toml"
    path.write_text(f"[bench]\nseeds = [0]\n[defaults]\npreset = 'smoke'\ndata_options = {WORLD}\n{defaults}\n{rows}")
    return path


def test_planned_work_is_the_hand_count_of_steps_batches_and_evaluations():
    spec = resolve_spec(RunSpec(preset="smoke", data_options=dict(SMALL_WORLD), pretrainer="mocov2",
                                pretrain_branches="both", pretrain_epochs=2, epochs=3, eval_every=2, batch_size=48))
    work = plan_run(spec, load_data(spec, *open_dataset(spec)))
    # pre-training sees at most 128 images of each of train and val (smoke's max_pretrain_images; --pretrain-data
    # all): 256 a branch, 8 whole batches of 32, twice
    assert work.pretrain_images == {"ground": 2 * 8 * 32, "aerial": 2 * 8 * 32}
    # fine-tuning: 128 training pairs (max_train_pairs) in 2 whole batches of 48, 3 epochs
    assert work.finetune_pairs == 3 * 2 * 48
    # evaluations before training and after epochs 2 and 3 (every 2, and the last), of 128 queries against all
    # 160 tiles of the val world (one tile a query in the aligned layout)
    assert (work.evaluations, work.eval_images) == (3, 128 + 160)
    assert work.mining_images == 0


def test_a_row_like_a_finished_run_is_estimated_from_its_recorded_seconds(trained_run, tmp_path):
    runs = tmp_path / "results"
    shutil.copytree(trained_run, runs / "earlier" / trained_run.name)
    record = json.loads((trained_run / "result.json").read_text())
    # the same network, sizes and batches at another learning rate and seed: the same work, the same seconds
    bench = load_bench(grid(tmp_path, "[[rows]]\nname = 'faster_lr'\nlr = 0.002\nseeds = [1]\n"))
    found = estimate_grid(bench, runs)
    (job,) = found.jobs
    timings = record["timings"]
    assert set(job.sources.values()) == {"runs (1)"}
    assert job.seconds["finetune"] == pytest.approx(timings["finetune_s"])
    assert job.seconds["eval"] == pytest.approx(timings["eval_s"])
    assert job.total == pytest.approx(timings["total_s"])
    assert found.sequential() == pytest.approx(timings["total_s"])


@pytest.mark.slow  # it compares two times taken minutes apart: a timed assertion, kept out of the default suite
def test_the_estimate_from_a_quick_measurement_is_within_3x_of_the_real_run(trained_run, tmp_path):
    """The smoke run of the session fixture took ``total_s`` for real; the estimate of the same run, measured
    afresh in an empty results folder (a few steps of each stage), must come within a factor of 3 of it.

    Why 3: the run is a few seconds long and ran earlier in the session, so the load of the machine may have
    changed since (on a 2-core machine shared with other test runs, a step's time moved 2x within minutes),
    and fixed costs (checkpoints, an evaluation's metrics) are only approximated. A gross error in the
    arithmetic would be far outside: a batch counted as a step is 32x, a pair's seconds counted per batch 1/32.
    """
    record = json.loads((trained_run / "result.json").read_text())
    bench = load_bench(grid(tmp_path, "[[rows]]\nname = 'smoke'\n"))
    (job,) = estimate_grid(bench, tmp_path / "empty").jobs
    assert set(job.sources.values()) == {"measured"}
    assert 1 / 3 <= job.total / record["timings"]["total_s"] <= 3.0, (job.seconds, record["timings"])


def test_gpu_rates_come_from_the_measured_throughput_scaled_by_pixels_and_gpus(tmp_path):
    rows = ("[[rows]]\nname = 'thesis'\nbackbone = 'vgg16'\nbackbone_stage = -1\ndim = 4096\n"
            "ground_size = [224, 448]\naerial_size = [224, 224]\n[[rows]]\nname = 'half'\nbackbone = 'vgg16'\n"
            "backbone_stage = -1\ndim = 4096\nground_size = [112, 224]\naerial_size = [112, 112]\n")
    found = estimate_grid(load_bench(grid(tmp_path, rows)), tmp_path / "empty", gpus=8)
    thesis, half = found.jobs
    # benchmarks/perf/results/throughput_vgg16_nosync.json: the fastest uncompiled VGG16 fine-tuning on the H200,
    # 0.0303872 s a step of 32 pairs at 224x448 and 224x224; 128 pairs (smoke) on 8 GPUs at the stated efficiency
    per_pair = 0.03038723499999918 / 32
    assert thesis.seconds["finetune"] == pytest.approx(128 * per_pair / (8 * DATA_PARALLEL_EFFICIENCY))
    assert half.seconds["finetune"] == pytest.approx(thesis.seconds["finetune"] / 4)  # a quarter of the pixels
    assert thesis.sources["finetune"] == "gpu (throughput_vgg16_nosync.json)"
    assert found.device_hours() == pytest.approx(8 * (thesis.total + half.total) / 3600)


def test_the_estimate_command_prints_each_run_the_total_and_its_sources(trained_run, tmp_path):
    runs = tmp_path / "results"
    shutil.copytree(trained_run, runs / "earlier" / trained_run.name)
    path = grid(tmp_path, "[[rows]]\nname = 'a'\nlr = 0.002\n[[rows]]\nname = 'b'\nlr = 0.003\n")
    result = cli("bench", str(path), "--estimate", "--runs-dir", str(runs), env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    assert "Estimate (not a measurement)" in result.stdout and "runs (1)" in result.stdout
    assert "2 runs to make, 0 already finished; estimated wall time with the local launcher" in result.stdout
    assert not (runs / "a").exists() and not (runs / "leaderboard.md").exists()  # nothing ran
    submitit = cli("bench", str(path), "--estimate", "--launcher", "submitit", "--runs-dir", str(runs),
                   env={"COLUMNS": "300"})
    assert submitit.returncode == 0 and "every job at once" in submitit.stdout, submitit.stderr


@pytest.mark.parametrize("args, message", [
    (("--gpus", "2"), "--gpus 2: only with --estimate"),
    (("--estimate", "--gpus", "0"), "--gpus 0: expected a positive number of GPUs"),
    (("--estimate", "--gpus", "1"), "no GPU measurement of backbone resnet10t (row smoke)"),
])
def test_bad_gpu_options_name_the_option_and_what_was_expected(tmp_path, args, message):
    path = grid(tmp_path, "[[rows]]\nname = 'smoke'\n")
    result = cli("bench", str(path), *args, "--runs-dir", str(tmp_path / "empty"))
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_an_aerial_query_protocol_is_estimated_against_its_ground_gallery(tmp_path, registry):
    """University-1652's satellite-to-drone: the satellite images are the queries, the drone views the gallery.
    The estimate counts what an evaluation embeds from the protocol, not from the aerial images (which are the
    queries here), as the run's first line does."""
    from university_layout import DISTRACTORS, DRONE_VIEWS, QUERIED, make_university1652

    release = make_university1652(tmp_path / "university")
    path = tmp_path / "grid.toml"
    path.write_text(f"[bench]\nseeds = [0]\n[defaults]\npreset = 'smoke'\ndataset = 'university1652'\n"
                    f"data_root = '{release}'\nsplit = 'sat2drone'\nepochs = 0\neval_batch_size = 4\n"
                    "[[rows]]\nname = 'zeroshot'\n")
    (job,) = estimate_grid(load_bench(path), tmp_path / "empty").jobs
    # one evaluation (no training): 3 queried satellite images against 9 drone views of each of 5 buildings
    assert (len(QUERIED), len(QUERIED + DISTRACTORS) * DRONE_VIEWS) == (3, 45)
    assert (job.work.evaluations, job.work.eval_images) == (1, 3 + 45)


def test_the_pre_training_probes_are_estimated_as_embedded_images(trained_run, tmp_path, monkeypatch):
    """Pre-training embeds two views of up to 256 validation images before and after (its probe). A stage's
    estimate counted none of it, and a row took it only from a finished run that pre-trained the same way."""
    from cvbench.bench import estimate
    from cvbench.runs.expected_time import StepTime

    monkeypatch.setattr(estimate, "measure_step", lambda stage, *args: StepTime(1.0, 100))  # 0.01 s an image
    runs = tmp_path / "results"
    shutil.copytree(trained_run, runs / "earlier" / trained_run.name)  # fine-tuned without pre-training
    timings = json.loads((trained_run / "result.json").read_text())["timings"]
    rows = "[stages.pre]\npretrainer = 'mocov2'\n[[rows]]\nname = 'pretrained'\nlr = 0.002\npretrainer = 'mocov2'\n"
    stage, row = estimate_grid(load_bench(grid(tmp_path, rows)), runs).jobs
    # the probe of the aerial branch: two views of the 160 validation tiles (fewer than 256), before and after,
    # embedded at the finished run's rate: its 2 evaluations of 128 queries and 160 tiles
    per_image = timings["eval_s"] / (2 * (128 + 160))
    assert stage.row == "@pre" and stage.work.other_images == row.work.other_images == 2 * 2 * 160
    assert stage.sources["eval"] == row.sources["eval"] == "runs (1)"
    assert stage.seconds["eval"] == pytest.approx(640 * per_image)
    assert row.seconds["eval"] == pytest.approx((2 * (128 + 160) + 640) * per_image)
    assert stage.seconds["pretrain"] == pytest.approx(8 * 32 * 0.01)  # measured: 8 steps of 32 images


def test_runs_that_decode_or_augment_on_the_device_lend_their_rates_only_to_runs_that_do_too():
    """``--gpu-decode`` and ``--gpu-augment`` change a step's time on CUDA as ``--workers`` does; a finished run's
    rates were lent to a row with the other setting."""
    from cvbench.bench.estimate import KEYS

    for name in ("gpu_decode", "gpu_augment"):
        on, off = (resolve_spec(RunSpec(preset="smoke", pretrainer="mocov2", **{name: value}))
                   for value in ("on", "off"))
        assert all(KEYS[kind](on, "aerial") != KEYS[kind](off, "aerial") for kind in ("pretrain", "finetune", "eval"))
