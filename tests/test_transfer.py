"""Cross-dataset transfer: train on one dataset, evaluate on another (or another split), named in the record."""

from __future__ import annotations

import json

import pytest
from conftest import SMALL_WORLD_ARGS, cli
from cvusa_layout import VAL_IDS, make_cvusa


@pytest.fixture(scope="module")
def cvusa(tmp_path_factory):
    return make_cvusa(tmp_path_factory.mktemp("cvusa"))


def test_train_on_the_synthetic_world_and_evaluate_on_cvusa(cvusa, tmp_path):
    result = cli("run", "--preset", "smoke", *SMALL_WORLD_ARGS, "--eval-dataset", "cvusa", "--eval-data-root",
                 str(cvusa), "--runs-dir", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    (record_path,) = tmp_path.glob("*/result.json")
    record = json.loads(record_path.read_text())
    assert record["split"] == "cross_area" and record["evaluated_on"] == {"dataset": "cvusa", "split": "val"}
    assert record["num_queries"] == record["num_references"] == len(VAL_IDS)  # CVUSA's val pairs, not the world's
    assert record["spec"]["eval_dataset"] == "cvusa" and record["spec"]["dataset"] == "synthetic"
    board = cli("leaderboard", str(tmp_path), "--format", "csv")
    assert "synthetic/cross_area -> cvusa/val" in board.stdout


def test_another_split_of_the_same_dataset(tmp_path):
    result = cli("run", "--preset", "smoke", *SMALL_WORLD_ARGS, "--eval-split", "same_area", "--runs-dir",
                 str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    (record_path,) = tmp_path.glob("*/result.json")
    assert json.loads(record_path.read_text())["evaluated_on"] == {"dataset": "synthetic", "split": "same_area"}


@pytest.mark.parametrize(("args", "message"), [
    (("--eval-dataset", "cvusa", "--eval-split", "test"), "--eval-split 'test' is not a split of dataset 'cvusa'; "
                                                          "it offers: val"),
    (("--eval-dataset", "cvusaa"), "cvusaa"),
    (("--eval-dataset", "cvusa"), "needs --data-root"),
])
def test_a_bad_evaluation_dataset_fails_before_any_work(cvusa, tmp_path, args, message):
    root = () if "needs --data-root" in message else ("--eval-data-root", str(cvusa))
    result = cli("run", "--preset", "smoke", *SMALL_WORLD_ARGS, *args, *root, "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()
