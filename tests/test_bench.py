"""Benchmark grids: the thesis files resolve without data; a small grid runs, skips, records failures."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from scipy import stats
from toy_dataset import ToyPlugin

from cvbench.bench.report import assess, curve, records, summarise, training
from cvbench.bench.scheduler import describe, plan, run_bench
from cvbench.bench.schema import load_bench
from cvbench.errors import CvbenchError



@pytest.mark.parametrize("name, rows, first, last", [("thesis_cvact", 10, 1, 10), ("thesis_vigor", 22, 11, 32)])
def test_every_thesis_experiment_resolves_without_the_data(name, rows, first, last, tmp_path):
    bench = load_bench(name)
    stages, jobs = plan(bench, tmp_path)
    assert [job.row for job in jobs] == [f"exp{n}" for n in range(first, last + 1)] and len(jobs) == rows
    assert not stages and all(job.error is None for job in jobs), [job.error for job in jobs if job.error]
    by_row = {job.row: job.spec for job in jobs}
    for row in bench.rows:
        assert set(row.reported) == {"R@1", "R@5", "R@1%"}
    if name == "thesis_cvact":
        assert by_row["exp1"].base_init == "random" and by_row["exp2"].base_init == "imagenet"
        assert (by_row["exp3"].pretrain_branches, by_row["exp3"].pretrain_data) == ("aerial", "train")
        assert by_row["exp3"].pretrain_from == "imagenet"  # the star: from ImageNet weights
        assert by_row["exp6"].pretrain_branches == "both" and by_row["exp7"].head == "safa"
        assert (by_row["exp2"].ground_size, by_row["exp2"].aerial_size) == ((112, 616), (256, 256))
        assert by_row["exp10"].pretrain_data == "all"
    else:
        assert by_row["exp13"].pretrain_from == "random" and by_row["exp13"].base_init == "imagenet"
        assert by_row["exp17"].pretrain_branches == "both" and by_row["exp18"].head == "safa"
        assert by_row["exp24"].split == "cross_area_swapped" and by_row["exp24"].pretrain_data == "val"
        assert by_row["exp25"].pretrain_data == "train"
        assert by_row["exp29"].loss == [("soft_triplet", 1.0), ("uniformity", 0.01)]
        assert by_row["exp32"].finetune_aug == "mocov2-nocrop"
        assert (by_row["exp12"].ground_size, by_row["exp12"].epochs, by_row["exp12"].dim) == ((224, 448), 100, 4096)


def test_the_baselines_grid_resolves_and_names_each_rows_recipe(tmp_path):
    bench = load_bench("baselines_synthetic")
    stages, jobs = plan(bench, tmp_path)
    assert all(job.error is None for job in jobs), [job.error for job in jobs if job.error]
    assert {row.name for row in bench.rows} >= {"safa_triplet", "gem", "netvlad", "mixvpr", "salad", "sample4geo",
                                                "frozen_standin"}
    assert all(len(row.seeds) >= 3 for row in bench.rows if row.name != "zeroshot_standin")
    text = {job.row: describe(job.spec, job.refs) for job in jobs}
    assert text["safa_triplet"] == "init random; safa, soft_triplet"
    assert text["sample4geo"] == ("init random; shared backbone; gem, infonce; aug geo-sync; batches hard_negatives; "
                                  "adamw, cosine lr")
    assert text["frozen_standin"] == "init @standin; frozen backbone; safa, soft_triplet"
    assert text["zeroshot_standin"] == "init @standin; frozen backbone; gem, zero-shot (no fine-tuning)"


def test_a_run_recorded_before_newer_options_existed_is_still_found(tmp_path):
    from cvbench.bench.scheduler import finished_runs, settle

    bench = load_bench("fov_synthetic")
    _, jobs = plan(bench, tmp_path)
    job = jobs[0]
    old = job.spec.to_dict()
    for newer in ("sampler", "sampler_options", "optimizer", "schedule", "shared_backbone", "freeze_backbone"):
        del old[newer]  # written by a cvbench before these options
    old["imagenet_weights"] = old.pop("pretrained_weights")  # and before this rename
    folder = tmp_path / "fov360_known" / "old-run"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"status": "finished", "spec": old}))
    job.done = None
    assert settle(job, finished_runs(tmp_path)).done == folder
    old["schedule"] = "cosine"  # a different experiment is not taken for this one
    (folder / "result.json").write_text(json.dumps({"status": "finished", "spec": old}))
    job.done = None
    assert settle(job, finished_runs(tmp_path)).done is None


def test_dry_run_lists_the_shipped_synthetic_study_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no grid file here: the name finds the one inside the package
    result = cli("bench", "thesis_synthetic", "--dry-run", "--runs-dir", str(tmp_path), env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    assert "@standin" in result.stdout and "105 runs (21 rows), 105 to run" in result.stdout
    assert "(thesis_synthetic)" in result.stdout


def test_the_benchmark_grids_ship_inside_the_package_and_a_path_still_works(tmp_path):
    import cvbench.bench

    folder = Path(cvbench.bench.__file__).parent / "grids"
    names = {"thesis_synthetic", "thesis_cvact", "thesis_vigor", "baselines_synthetic", "fov_synthetic"}
    assert {path.stem for path in folder.glob("*.toml")} == names
    setup = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "cvbench.bench.grids" in setup["packages"] and setup["package-data"]["cvbench.bench.grids"] == ["*.toml"]
    listed = cli("bench", "--list", env={"COLUMNS": "300"})
    assert listed.returncode == 0 and all(name in listed.stdout for name in names), listed.stderr
    copy = tmp_path / "mine.toml"
    copy.write_text((folder / "fov_synthetic.toml").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_bench(copy).path == copy and load_bench(copy).label == copy.as_posix()
    assert load_bench("fov_synthetic").label == "fov_synthetic"
    with pytest.raises(CvbenchError, match="did you mean 'fov_synthetic'"):
        load_bench("fov_synthetc")


GRID = """
[bench]
title = "toy grid"
seeds = [0, 1]

[defaults]
preset = "smoke"
dataset = "toy"
backbone = "resnet10t"
ground_size = [16, 64]
aerial_size = [32, 32]
head = "siamese_vgg"
dim = 64
batch_size = 8
epochs = 1
pretrain_epochs = 1
pretrain_batch_size = 8

[stages.start]
pretrainer = "mocov2"
pretrain_branches = "both"
pretrain_options = { queue_size = 64, bn_splits = 2 }

[[rows]]
name = "plain"
base_init = "random"

[[rows]]
name = "from_stage"
base_init = "@start"

[[rows]]
name = "broken"
seeds = [0]
pretrainer = "mocov2"
pretrain_options = { queue_size = 64, bn_splits = 2 }
pretrain_batch_size = 4096

[[rows]]
name = "invalid"
seeds = [0]
pretrain_data = "everything"

[[findings]]
question = "does the stage help?"
baseline = "plain"
treatment = "from_stage"
thesis = "higher"
"""


def test_a_grid_runs_skips_what_is_done_and_records_failures(registry, tmp_path):
    registry.add(ToyPlugin(), source="toy-bench")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    runs = tmp_path / "results"
    outcome = run_bench(grid, runs, quiet=True)
    assert outcome.ran == 1 + 4  # the stage, then plain and from_stage at two seeds; broken fails
    failed = {row: error for row, _, error in outcome.failed}
    assert set(failed) == {"broken", "invalid"}
    assert "pretrain-batch-size" in failed["broken"] and "pretrain-data" in failed["invalid"]
    assert json.loads(next((runs / "broken").glob("*/result.json")).read_text())["status"] == "failed"

    from_stage = json.loads(next((runs / "from_stage").glob("*/result.json")).read_text())
    assert Path(from_stage["spec"]["base_init"]).parent == runs / "stages" / "start"

    again = run_bench(grid, runs, quiet=True)
    assert again.ran == 0 and again.skipped == 4  # only the broken row is tried again, and fails again
    assert {row for row, _, _ in again.failed} == {"broken", "invalid"}

    summary = summarise(load_bench(grid), runs).set_index("row")
    plain = [json.loads(p.read_text())["metrics"]["R@1"] for p in (runs / "plain").glob("*/result.json")]
    assert summary.loc["plain", "seeds"] == "2/2"
    assert summary.loc["plain", "R@1 mean"] == pytest.approx(sum(plain) / 2)
    assert summary.loc["plain", "R@1 std"] == pytest.approx(abs(plain[0] - plain[1]) / math.sqrt(2))
    assert summary.loc["broken", "seeds"] == "0/1" and math.isnan(summary.loc["broken", "R@1 mean"])
    text = outcome.leaderboard.read_text()
    assert "| plain" in text and "±" in text and "does the stage help?" in text and "95% interval" in text
    assert "## Did pre-training learn?" in text and "| @start" in text  # the stage's loss and probe


PAIRED = """
[bench]
seeds = [0, 1, 2, 3, 4]
margin = 3

[defaults]
preset = "smoke"
dataset = "toy"

[[rows]]
name = "a"

[[rows]]
name = "b"
lr = 0.01

[[rows]]
name = "c"
lr = 0.002

[[rows]]
name = "a_half"
train_fraction = 0.5

[[findings]]
question = "b above a?"
baseline = "a"
treatment = "b"
thesis = "higher"

[[findings]]
question = "c above a?"
baseline = "a"
treatment = "c"
thesis = "higher"

[[findings]]
question = "c below b?"
baseline = "b"
treatment = "c"
thesis = "higher"

[report]
curve = { option = "train_fraction", series = { "all" = ["a_half", "a"], "other" = ["c"] } }
"""

SCORES = {"a": [10, 12, 11, 13, 9], "b": [14, 15, 15, 18, 12], "c": [10.5, 11, 12, 12.5, 9.5],
          "a_half": [6, 7, 6, 9, 5]}


@pytest.fixture
def paired_grid(registry, tmp_path):
    """The PAIRED grid loaded with the toy plugin registered, and its (still empty) results folder."""
    registry.add(ToyPlugin(), source="toy-bench")
    grid = tmp_path / "grid.toml"
    grid.write_text(PAIRED)
    return load_bench(grid), tmp_path / "runs"


def _fake_records(bench, runs):
    """A finished result.json for every (row, seed) of the grid, scored from SCORES."""
    _, jobs = plan(bench, runs)
    for job in jobs:
        folder = runs / job.row / f"seed{job.seed}"
        folder.mkdir(parents=True)
        score = SCORES[job.row][job.seed]
        record = {"status": "finished", "spec": job.spec.to_dict(), "metrics": {"R@1": score, "R@5": score,
                                                                                "R@1%": score}}
        if job.row == "b":  # a pre-training whose probe fell and whose loss rose
            record["pretraining"] = {"aerial": {"losses": [2.0, 2.5], "steps": 10, "images": 100, "learned": False,
                                                "probe": {"before": 5.0, "after": 4.0, "images": 50, "chance": 2.0}}}
        (folder / "result.json").write_text(json.dumps(record))


def test_findings_are_paired_and_holm_corrected(paired_grid):
    bench, runs = paired_grid
    _fake_records(bench, runs)
    assessed = assess(bench, runs)
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    p = [stats.ttest_rel(SCORES[t], SCORES[b]).pvalue for b, t in pairs]
    order = np.argsort(p)  # Holm by hand for three tests: 3 p(1), max(that, 2 p(2)), max(that, p(3))
    adjusted = np.empty(3)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p[index]))
        adjusted[index] = running
    for (b, t), entry, want_p, want_adjusted in zip(pairs, assessed.itertuples(), p, adjusted):
        d = np.subtract(SCORES[t], SCORES[b])
        half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
        assert entry.difference.mean == pytest.approx(d.mean())
        assert (entry.difference.low, entry.difference.high) == pytest.approx((d.mean() - half, d.mean() + half))
        assert entry.difference.p == pytest.approx(want_p) and entry._4 == pytest.approx(want_adjusted)
    assert list(assessed["verdict"]) == ["reproduced", "no effect larger than 3", "opposite"]
    summary = summarise(bench, runs).set_index("row")
    assert summary.loc["b", "R@1 mean"] == pytest.approx(np.mean(SCORES["b"]))
    warning = "aerial pre-training did not learn in 5 of 5 seeds (probe 5.0 -> 4.0, loss 2.000 -> 2.500 on average)"
    assert summary.loc["b", "pre-training"] == warning and summary.loc["a", "pre-training"] == ""
    assert [bool(caution) for caution in assessed["caution"]] == [True, False, True]  # the findings with row b


def test_the_training_table_reads_each_runs_first_and_last_epoch_loss_and_mining_share(paired_grid):
    bench, runs = paired_grid
    _fake_records(bench, runs)
    for row in ("a", "b"):
        for seed, folder in enumerate(sorted((runs / row).iterdir())):
            rising = row == "b" and seed == 0
            losses = [0.3, 0.5] if rising else [0.3 + seed / 10, 0.2, 0.1]
            (folder / "metrics.csv").write_text("epoch,R@1,loss\n0,0.1,\n" + "".join(
                f"{epoch},,{loss}\n" for epoch, loss in enumerate(losses, start=1)))
            if row == "b":
                record = json.loads((folder / "result.json").read_text())
                record["timings"] = {"finetune_s": 10.0, "mining_s": 1.0 + seed}
                (folder / "result.json").write_text(json.dumps(record))
    _, jobs, found = records(bench, runs)
    table = training(jobs, found).set_index("row")
    assert list(table.index) == ["a", "b"]  # c has no metrics.csv: nothing to show
    assert table.loc["a", "loss first epoch"] == pytest.approx(np.mean([0.3 + s / 10 for s in range(5)]))
    assert table.loc["a", "loss last epoch"] == pytest.approx(0.1) and table.loc["a", "loss fell"] == "5/5"
    assert table.loc["b", "loss fell"] == "4/5" and table.loc["a", "mining share"] == ""
    assert table.loc["b", "mining share"] == "30%"  # mean of 1/10 .. 5/10


def test_the_label_curve_reads_the_option_and_pairs_two_series(paired_grid):
    bench, runs = paired_grid
    _fake_records(bench, runs)
    table = curve(bench, runs).set_index(["series", "x"])
    assert table.loc[("all", 0.5), "mean"] == pytest.approx(np.mean(SCORES["a_half"]))
    low, high = stats.t.interval(0.95, 4, loc=np.mean(SCORES["a"]), scale=stats.sem(SCORES["a"]))
    assert (table.loc[("all", 1.0), "low"], table.loc[("all", 1.0), "high"]) == pytest.approx((low, high))
    d = np.subtract(SCORES["c"], SCORES["a"])  # the second series minus the first at the same share
    assert table.loc[("other", 1.0), "difference"] == pytest.approx(d.mean())


def test_a_stage_may_start_from_a_stage_above_it_only(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[stages.first]\npretrainer = 'mocov2'\n[stages.second]\npretrainer = 'mocov2'\n"
                    "pretrain_from = '@first'\n[[rows]]\nname = 'a'\nbase_init = '@second'\n")
    assert list(load_bench(grid).stages) == ["first", "second"]
    grid.write_text("[stages.first]\npretrainer = 'mocov2'\npretrain_from = '@second'\n[stages.second]\n"
                    "pretrainer = 'mocov2'\n[[rows]]\nname = 'a'\n")
    with pytest.raises(CvbenchError, match="stage above it"):
        load_bench(grid)


@pytest.mark.parametrize("text, message", [
    ("[[rows]]\nseeds = [0]\n", "has no name"),
    ("[[rows]]\nname = 'a'\n[[rows]]\nname = 'a'\n", "unique"),
    ("[[rows]]\nname = 'a'\nbase_init = '@nowhere'\n", "no \\[stages.nowhere\\]"),
    ("[bench]\nseeds = []\n[[rows]]\nname = 'a'\n", "non-empty list"),
    ("[oops]\n", "unknown section"),
    ("[[rows]]\nname = 'a'\n[[findings]]\nbaseline = 'a'\ntreatment = 'b'\nthesis = 'higher'\n", "finding"),
    ("[[rows]]\nname = 'a'\n[[rows]]\nname = 'b'\n[[findings]]\nquestion = 'q'\nbaseline = 'a'\ntreatment = 'b'\n"
     "thesis = 'higher'\nexpected = 'higher'\n", "both thesis and expected"),
    ("[[rows]]\nname = 'a'\n[[rows]]\nname = 'b'\n[[findings]]\nquestion = 'q'\nbaseline = 'a'\ntreatment = 'b'\n"
     "expected = 'sideways'\n", "expected \\(or thesis\\) = higher or lower"),
    ("[[rows]]\nname = 'a'\nseed = 3\n", "row a sets seed = 3, .* write seeds = \\[3\\] instead"),
    ("[defaults]\nseed = 1\n[[rows]]\nname = 'a'\n", "\\[defaults\\] sets seed = 1"),
    ("not toml = = 1", "not valid TOML"),
    ("[bench]\nmargin = -1\n[[rows]]\nname = 'a'\n", "margin"),
    ("[[rows]]\nname = 'a'\n[report]\ncurve = { option = 'train_fraction', series = { s = ['b'] } }\n", "curve"),
])
def test_bad_grid_files_name_the_problem(tmp_path, text, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    with pytest.raises(CvbenchError, match=message):
        load_bench(grid)


def test_a_stage_run_never_stands_in_for_a_row_with_the_same_options(paired_grid):
    """A pre-training stage and a row that pre-trains alike share a spec; only the row has metrics."""
    bench, runs = paired_grid
    _, jobs = plan(bench, runs)
    stage_like = runs / "stages" / "x" / "run"
    stage_like.mkdir(parents=True)
    (stage_like / "result.json").write_text(json.dumps({"status": "finished", "stage": "pretrain",
                                                        "spec": jobs[0].spec.to_dict()}))
    assert plan(bench, runs)[1][0].done is None
    (stage_like / "result.json").write_text(json.dumps({"status": "finished", "stage": "run",
                                                        "spec": jobs[0].spec.to_dict()}))
    assert plan(bench, runs)[1][0].done == stage_like


def test_a_sweep_expands_the_product_of_its_option_lists_into_named_rows(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[bench]\nseeds = [0]\n[defaults]\npreset = 'smoke'\nepochs = 2\n[[rows]]\nname = 'plain'\n"
                    "[[sweep]]\nhead = ['safa', 'gem']\npretrainer = ['none', 'mocov2']\n"
                    "[[sweep]]\nname = 'w'\nseeds = [1, 2]\n"
                    "loss = [['soft_triplet'], ['soft_triplet', 'uniformity:0.1']]\n")
    bench = load_bench(grid)
    assert [(row.name, row.options, row.seeds) for row in bench.rows] == [
        ("plain", {}, [0]),
        ("head=safa,pretrainer=none", {"head": "safa", "pretrainer": "none"}, [0]),
        ("head=safa,pretrainer=mocov2", {"head": "safa", "pretrainer": "mocov2"}, [0]),
        ("head=gem,pretrainer=none", {"head": "gem", "pretrainer": "none"}, [0]),
        ("head=gem,pretrainer=mocov2", {"head": "gem", "pretrainer": "mocov2"}, [0]),
        ("w_loss=soft_triplet", {"loss": ["soft_triplet"]}, [1, 2]),
        ("w_loss=soft_triplet+uniformity:0.1", {"loss": ["soft_triplet", "uniformity:0.1"]}, [1, 2]),
    ]
    _, jobs = plan(bench, tmp_path / "runs", only=["head=gem,pretrainer=mocov2"])
    assert [(job.spec.head, job.spec.pretrainer, job.spec.epochs, job.error) for job in jobs] == \
        [("gem", "mocov2", 2, None)]  # merged with [defaults]


@pytest.mark.parametrize("text, message", [
    ("[[sweep]]\nhead = 'safa'\n", "sweep 1 head = 'safa': input should be a valid list"),
    ("[[sweep]]\nhed = ['safa']\n", "sweep 1 has unknown key 'hed'; did you mean 'head'?"),
    ("[[sweep]]\nhead = []\n", "sweep 1 head = \\[\\]: list should have at least 1 item"),
    ("[[sweep]]\nname = 'x'\n", "sweep 1 varies no option"),
    ("[[rows]]\nname = 'a'\nhead = 'safa'\n[[sweep]]\nhead = ['safa', 'safa']\n", "unique; repeated: head=safa"),
])
def test_a_bad_sweep_names_the_file_the_sweep_and_the_key(tmp_path, text, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    with pytest.raises(CvbenchError, match=f"^{grid}: .*{message}"):
        load_bench(grid)


def test_a_grid_rows_plugin_option_of_the_wrong_type_fails_that_row_naming_plugin_option_and_type(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[defaults]\npreset = 'smoke'\nhead = 'gem'\n[[rows]]\nname = 'ok'\nhead_options = { p = 3 }\n"
                    "[[rows]]\nname = 'bad'\nhead_options = { learn_p = 'maybe' }\n")
    _, jobs = plan(load_bench(grid), tmp_path / "runs")
    ok, bad = jobs
    assert ok.error is None and ok.spec.head_options == {"p": 3.0} and type(ok.spec.head_options["p"]) is float
    assert bad.error is not None and bad.error.startswith("head 'gem': option learn_p = 'maybe': expected bool"), \
        bad.error


def test_a_grid_with_an_unknown_key_in_a_row_names_the_file_the_row_and_the_key(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[[rows]]\nname = 'a'\nhaed = 'gem'\n")
    with pytest.raises(CvbenchError, match=f"^{grid}: row a has unknown key 'haed'; did you mean 'head'\\?"):
        load_bench(grid)
