"""The leaderboard reads result records only, ranks finished runs and sets the others apart."""

from __future__ import annotations

import json

import pytest

from cvbench.errors import CvbenchError
from cvbench.runs.leaderboard import load_records, render, split_finished, to_frame


def record(run, r1, status="finished", **spec):
    base = {"dataset": "synthetic", "pretrainer": "none", "head": "safa", "backbone": "resnet18",
            "loss": [["soft_triplet", 1.0]], "base_init": "random", "ground_init": "auto", "aerial_init": "auto",
            "seed": 0}
    base.update(spec)
    out = {"run": run, "status": status, "spec": base, "split": "cross_area",
           "timings": {"total_s": 12.5}, "num_queries": 100}
    if r1 is not None:
        out["metrics"] = {"R@1": r1, "R@5": r1 + 10, "R@10": r1 + 20, "R@1%": r1 + 30}
    return out


@pytest.fixture
def runs(tmp_path):
    rows = [record("a", 10.0), record("b", 30.0, pretrainer="mocov2", pretrain_branches="aerial",
                                      pretrain_data="val", pretrain_from="imagenet",
                                      loss=[["soft_triplet", 1.0], ["uniformity", 0.001]]),
            record("c", None, status="running"), record("d", 20.0, status="failed")]
    for row in rows:
        (tmp_path / row["run"]).mkdir()
        (tmp_path / row["run"] / "result.json").write_text(json.dumps(row))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "result.json").write_text("{truncated")
    return tmp_path


def test_finished_runs_ranked_by_r1_and_others_apart(runs):
    finished, others = split_finished(to_frame(load_records(runs)))
    assert list(finished["run"]) == ["b", "a"]
    assert finished.loc[0, "pretrainer"] == "mocov2"
    assert finished.loc[0, "pretraining"] == "aerial val*"  # branch, data, * = from ImageNet weights
    assert finished.loc[0, "aerial init"] == "pretrained" and finished.loc[0, "ground init"] == "random"
    assert finished.loc[0, "loss"] == "soft_triplet + 0.001*uniformity"
    assert sorted(others["run"]) == ["c", "d", "e"]
    unreadable = others.loc[others["run"] == "e"].iloc[0]
    assert unreadable["status"] == "unreadable"
    assert unreadable["dataset"] == "" and unreadable["pretrainer"] == ""  # not "None" nor "none": nothing is known


def test_markdown_csv_and_json_exports(runs):
    frame = to_frame(load_records(runs))
    markdown = render(frame, "markdown")
    assert markdown.splitlines()[0].startswith("| run")
    assert "30.00" in markdown and "Unfinished or failed runs" in markdown
    csv = render(frame, "csv")
    assert csv.splitlines()[0].startswith("section,rank,run,pretrainer")
    assert len(csv.strip().splitlines()) == 3
    data = json.loads(render(frame, "json"))
    assert [row["run"] for row in data["sections"][0]["rows"]] == ["b", "a"]


def test_missing_runs_folder_is_named(tmp_path):
    with pytest.raises(CvbenchError, match="runs folder not found"):
        load_records(tmp_path / "nowhere")


def test_uniformity_columns_on_request(tmp_path):
    row = record("u", 12.0)
    row["uniformity"] = {"before": {"ground": -1.0, "satellite": -1.5, "all": -1.25},
                         "after": {"ground": -2.0, "satellite": -2.5, "all": -3.0}}
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "result.json").write_text(json.dumps(row))
    plain = to_frame(load_records(tmp_path))
    assert not [c for c in plain.columns if c.startswith("U ")]
    frame = to_frame(load_records(tmp_path), uniformity=True)
    assert frame.loc[0, ["U ground", "U satellite", "U all"]].tolist() == [-2.0, -2.5, -3.0]
    assert frame.loc[0, ["U ground before", "U satellite before", "U all before"]].tolist() == [-1.0, -1.5, -1.25]
    assert "U all before" in render(frame, "markdown").splitlines()[0]


def test_finished_pretraining_runs_are_not_listed(tmp_path):
    rows = [record("r", 12.0), {**record("p", None), "stage": "pretrain"},
            {**record("q", None, status="failed"), "stage": "pretrain"}]
    for row in rows:
        (tmp_path / row["run"]).mkdir()
        (tmp_path / row["run"] / "result.json").write_text(json.dumps(row))
    finished, others = split_finished(to_frame(load_records(tmp_path)))
    assert list(finished["run"]) == ["r"] and list(others["run"]) == ["q"]  # a failed pre-training still shows


def test_a_share_of_the_labels_gets_its_own_column(tmp_path):
    for row in (record("all", 12.0, train_fraction=1.0), record("tenth", 3.0, train_fraction=0.1)):
        (tmp_path / row["run"]).mkdir()
        (tmp_path / row["run"] / "result.json").write_text(json.dumps(row))
    frame = to_frame(load_records(tmp_path)).set_index("run")
    assert frame.loc["all", "labels"] == "100%" and frame.loc["tenth", "labels"] == "10%"
    (tmp_path / "tenth" / "result.json").unlink()
    assert "labels" not in to_frame(load_records(tmp_path)).columns  # every run saw all its pairs

