"""Benchmark grids: the thesis files resolve without data; a small grid runs, skips, records failures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from cvbench.bench import Finding, load_bench, plan, run_bench, summarise, verdict
from cvbench.errors import CvbenchError
from toy_dataset import ToyPlugin

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("name, rows, first, last", [("thesis_cvact", 10, 1, 10), ("thesis_vigor", 22, 11, 32)])
def test_every_thesis_experiment_resolves_without_the_data(name, rows, first, last, tmp_path):
    bench = load_bench(BENCHMARKS / f"{name}.toml")
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


def test_dry_run_lists_the_synthetic_study(tmp_path):
    result = run_cli("bench", str(BENCHMARKS / "thesis_synthetic.toml"), "--dry-run", "--runs-dir", str(tmp_path),
                     env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    assert "@standin" in result.stdout and "39 runs (13 rows), 39 to run" in result.stdout


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
pretrain_options = { queue_size = 64 }

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
pretrain_options = { queue_size = 64 }
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
    assert "| plain" in text and "±" in text and "does the stage help?" in text


def test_verdicts_by_hand():
    summary = pd.DataFrame({"row": ["a", "b", "c", "d"], "R@1 mean": [10.0, 14.0, 11.0, 5.0],
                            "R@1 std": [1.0, 1.0, 1.0, math.nan]})
    assert verdict(summary, Finding("", "a", "b", "higher"))[0] == "reproduced"  # +4 > 2
    assert verdict(summary, Finding("", "a", "b", "lower"))[0] == "opposite"
    assert verdict(summary, Finding("", "a", "c", "higher"))[0] == "within noise"  # +1 <= 2
    assert verdict(summary, Finding("", "a", "d", "lower"))[0] == "not run"


@pytest.mark.parametrize("text, message", [
    ("[[rows]]\nseeds = [0]\n", "has no name"),
    ("[[rows]]\nname = 'a'\n[[rows]]\nname = 'a'\n", "unique"),
    ("[[rows]]\nname = 'a'\nbase_init = '@nowhere'\n", "no \\[stages.nowhere\\]"),
    ("[bench]\nseeds = []\n[[rows]]\nname = 'a'\n", "non-empty list"),
    ("[oops]\n", "unknown section"),
    ("[[rows]]\nname = 'a'\n[[findings]]\nbaseline = 'a'\ntreatment = 'b'\nthesis = 'higher'\n", "finding"),
    ("not toml = = 1", "not valid TOML"),
])
def test_bad_grid_files_name_the_problem(tmp_path, text, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    with pytest.raises(CvbenchError, match=message):
        load_bench(grid)
