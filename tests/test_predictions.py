"""``cvbench eval --predictions K``: each query's true tile and top K, by name and place, with the error in metres."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import cli
from cvbench_plugins.datasets.pairs import Pairs
from test_dataset_pairs import make_pairs

from cvbench.data import ArrayImages, CrossViewPairs
from cvbench.data.pairs import load_subset
from cvbench.data.preview import export_pairs
from cvbench.evaluation.evaluate import Evaluation
from cvbench.runs.folder import RunFolder
from cvbench.runs.predictions import image_names, write_predictions
from cvbench.runs.subsets import open_dataset

EARTH_RADIUS_M = 6_371_008.8
# Two val queries and three tiles in degrees; tile B's own row (line 6) places it 0.0005° north of query q1.
ROWS = (
    ("g/t0.png", "a/T.png", 47.9, 11.0, "train"),
    ("g/q0.png", "a/A.png", 48.0, 11.0, "val"),
    ("g/q1.png", "a/B.png", 48.001, 11.0, "val"),
    ("", "a/C.png", 48.0, 11.001, "val"),
    ("", "a/B.png", 48.0015, 11.0, "val"),
)


def test_a_pairs_folder_gives_file_names_degrees_and_the_top1_error(tmp_path):
    root = make_pairs(tmp_path / "city", ROWS, header=("ground", "aerial", "lat", "lon", "split"))
    pairs = load_subset(Pairs(root), "val", "val")  # gallery A, B, C in order of first appearance
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    reference = np.array([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])  # q0: C 1.0, A 0.8; q1: B 1.0, A 0.6
    result = Evaluation({}, {}, 2, 3, query, reference, [])
    path = write_predictions(tmp_path / "predictions_val.csv", result, pairs, np.arange(2), 2, root / "pairs.csv")
    frame = pd.read_csv(path)
    assert list(frame.columns) == [
        "query", "query_index", "positive", "positive_index", "query_lat", "query_lon",
        "top1", "top1_index", "score1", "top1_lat", "top1_lon",
        "top2", "top2_index", "score2", "top2_lat", "top2_lon", "error_m"]
    first, second = frame.to_dict("records")
    assert {k: first[k] for k in ("query", "query_index", "positive", "positive_index", "top1", "top1_index",
                                  "top2", "top2_index")} == {
        "query": "g/q0.png", "query_index": 0, "positive": "a/A.png", "positive_index": 0,
        "top1": "a/C.png", "top1_index": 2, "top2": "a/A.png", "top2_index": 0}
    assert (first["query_lat"], first["query_lon"], first["top1_lat"], first["top1_lon"]) == (48.0, 11.0, 48.0, 11.001)
    assert first["score1"] == pytest.approx(1.0) and first["score2"] == pytest.approx(0.8)
    # 0.001° of longitude along the 48th parallel, and 0.0005° of latitude
    assert first["error_m"] == pytest.approx(EARTH_RADIUS_M * math.cos(math.radians(48)) * math.radians(0.001),
                                             rel=1e-6)
    assert (second["query"], second["top1"], second["top1_lat"]) == ("g/q1.png", "a/B.png", 48.0015)
    assert second["error_m"] == pytest.approx(EARTH_RADIUS_M * math.radians(0.0005), rel=1e-6)


def test_images_in_memory_are_named_as_data_synth_exports_them(tmp_path):
    rng = np.random.default_rng(0)
    pairs = CrossViewPairs(ArrayImages(rng.integers(0, 255, (3, 8, 16, 3), dtype=np.uint8)),
                           ArrayImages(rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)), np.array([1, 0, 1]))
    export_pairs({"val": pairs}, tmp_path)
    written = pd.read_csv(tmp_path / "pairs.csv")
    assert image_names(pairs.ground, "ground", None).tolist() == written["ground"].dropna().tolist()
    tiles = image_names(pairs.aerial, "aerial", None).tolist()
    assert tiles == sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "val" / "aerial").glob("*.png"))


def test_eval_predictions_of_the_synthetic_world_name_and_place_every_tile(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    result = cli("eval", str(run), "--predictions", "3", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    frame = pd.read_csv(summary["predictions"])
    assert list(frame.columns[:6]) == ["query", "query_index", "positive", "positive_index", "query_x", "query_y"]
    assert [f"top3{suffix}" in frame for suffix in ("", "_index", "_x", "_y")] == [True] * 4 and "score3" in frame
    assert frame["query"].tolist() == [f"val/ground/{i:06d}.png" for i in frame["query_index"]]
    assert frame["top2"].tolist() == [f"val/aerial/{i:06d}.png" for i in frame["top2_index"]]
    assert all(re.fullmatch(r"val/aerial/\d{6}\.png", name) for name in frame["positive"])
    spec = RunFolder(run).read_spec()
    dataset, split = open_dataset(spec)
    val = load_subset(dataset, split, "val")
    np.testing.assert_allclose(frame[["query_x", "query_y"]], val.ground_meta[["x", "y"]].iloc[frame["query_index"]])
    np.testing.assert_allclose(frame[["top1_x", "top1_y"]], val.aerial_meta[["x", "y"]].iloc[frame["top1_index"]])
    np.testing.assert_allclose(frame["error_m"], np.hypot(frame["query_x"] - frame["top1_x"],
                                                          frame["query_y"] - frame["top1_y"]))
    hits = 100 * (frame["top1_index"] == frame["positive_index"]).mean()
    assert hits == pytest.approx(summary["metrics"]["R@1"], abs=100 / len(frame) * 2)  # equal up to ties
    assert len(frame) == summary["num_queries"]


def test_a_negative_count_of_predictions_is_refused_naming_the_option(trained_run):
    result = cli("eval", str(trained_run), "--predictions", "-1")
    assert result.returncode == 2 and "--predictions -1" in result.stderr
    assert not list(trained_run.glob("predictions_*"))
