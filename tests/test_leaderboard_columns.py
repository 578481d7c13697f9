"""A leaderboard a reader can trust: option columns, seeds merged, filters, sections, R@1%, starts, JSON, versions.

Records are written as ``result.json`` files in the on-disk layout of a run
folder; nothing is trained.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from cvbench.runs.leaderboard import load_records, render, sections, split_finished, start_name, to_frame
from cvbench.runs.records import RunRecorder, environment
from cvbench.runs.run_settings import LeaderboardOptionError, matches, parse_group_by, parse_where
from cvbench.spec import RunSpec
from conftest import cli, make_distribution
from test_leaderboard import record


def write(runs: Path, *rows: dict) -> Path:
    for row in rows:
        (runs / row["run"]).mkdir(parents=True)
        (runs / row["run"] / "result.json").write_text(json.dumps(row))
    return runs


def run(name: str, r1: float, split: str = "cross_area", gallery: int = 100, **spec) -> dict:
    """A finished record with a gallery size, on ``split``."""
    return {**record(name, r1, **spec), "split": split, "num_references": gallery}


def finished(runs: Path, **options):
    return split_finished(to_frame(load_records(runs), **options))[0]


def merged(runs: Path, fields: str):
    """The one section of ``runs`` with its seeds merged by ``--group-by fields``."""
    (section,) = sections(finished(runs, group_by=parse_group_by(fields)))
    return section.table


def test_options_that_differ_get_columns_and_the_gallery_is_shown(tmp_path):
    write(tmp_path, run("short", 10.0, epochs=4, dim=1024, ground_size=[32, 128], preset="smoke"),
          run("long", 20.0, epochs=8, dim=1024, ground_size=[64, 256], preset="smoke", gallery=1000))
    table = finished(tmp_path).set_index("run")
    assert table.loc["short", "epochs"] == "4" and table.loc["long", "epochs"] == "8"
    assert table.loc["short", "ground size"] == "32x128" and table.loc["long", "ground size"] == "64x256"
    assert "dim" not in table.columns and "preset" not in table.columns  # the same for both: no column
    assert table.loc["short", "gallery"] == 100 and table.loc["long", "gallery"] == 1000


def test_the_terminal_table_names_each_run(tmp_path):
    write(tmp_path, run("20261205-101010-run-synthetic-none-safa-s0", 10.0, epochs=4),
          run("20261205-111111-run-synthetic-none-safa-s1", 12.0, epochs=8, seed=1))
    result = cli("leaderboard", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "20261205-101010-run-synthetic-none-safa-s0" in result.stdout
    assert "20261205-111111-run-synthetic-none-safa-s1" in result.stdout
    assert re.search(r"epochs\s", result.stdout)


def test_pretraining_options_of_a_run_that_never_pretrained_are_not_shown(tmp_path):
    write(tmp_path, run("plain", 10.0, pretrain_epochs=6),
          run("moco", 12.0, pretrainer="mocov2", pretrain_branches="aerial", pretrain_data="val",
              pretrain_from="imagenet", pretrain_epochs=200))
    table = finished(tmp_path).set_index("run")
    assert table.loc["plain", "pretrain epochs"] == "-" and table.loc["moco", "pretrain epochs"] == "200"


def test_group_by_merges_seeds_into_mean_and_t_interval(tmp_path):
    write(tmp_path, *(run(f"a{seed}", r1, seed=seed) for seed, r1 in enumerate((10.0, 12.0, 14.0))),
          run("b0", 20.0, head="gem"))
    table = merged(tmp_path, "all").set_index("head")
    # mean 12, sample sd 2, t(0.975, 2 df) = 4.302653: half-width 4.302653 * 2 / sqrt(3) = 4.968275
    assert table.loc["safa", "R@1"] == pytest.approx(12.0)
    assert table.loc["safa", "R@1 ci95"] == pytest.approx(4.968275, abs=1e-5)
    assert table.loc["safa", "n"] == 3 and table.loc["safa", "seeds"] == "0, 1, 2"
    assert table.loc["gem", "n"] == 1 and math.isnan(table.loc["gem", "R@1 ci95"])  # one seed: no interval
    markdown = render(to_frame(load_records(tmp_path), group_by=parse_group_by("all")), "markdown")
    assert "12.00 ± 4.97" in markdown and "95% t-interval" in markdown
    assert markdown.index("20.00") < markdown.index("12.00 ± 4.97")  # ranked by the mean


def test_group_by_named_options_leaves_out_settings_a_group_mixes(tmp_path):
    write(tmp_path, run("r18", 10.0, backbone="resnet18"), run("r50", 14.0, backbone="resnet50", seed=1))
    table = merged(tmp_path, "head")
    assert len(table) == 1 and table.loc[0, "n"] == 2 and table.loc[0, "R@1"] == pytest.approx(12.0)
    assert "backbone" not in table.columns  # no one backbone describes the merged row


def test_group_by_unknown_option_is_one_line_naming_it():
    with pytest.raises(LeaderboardOptionError, match=r"--group-by 'hed'.*from: .*head"):
        parse_group_by("hed")


def test_where_filters_on_every_pair(tmp_path):
    write(tmp_path, run("v1", 10.0, dataset="vigor"), run("v2", 11.0, dataset="vigor", split="same_area"),
          run("c", 12.0, dataset="cvusa"))
    where = parse_where(["dataset=vigor,split=cross_area"])
    assert [r["run"] for r in load_records(tmp_path) if matches(r, where)] == ["v1"]
    assert matches(run("x", 1.0, lr=0.001), parse_where(["lr=1e-3"]))  # the number, not its spelling
    result = cli("leaderboard", str(tmp_path), "--where", "dataset=vigor", "--where", "split=same_area",
                 "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert ",v2," in result.stdout and ",v1," not in result.stdout and ",c," not in result.stdout


def test_where_unknown_key_is_a_one_line_error_listing_valid_keys(tmp_path):
    write(tmp_path, run("v1", 10.0))
    result = cli("leaderboard", str(tmp_path), "--where", "datset=vigor")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "'datset'" in line and "did you mean 'dataset'" in line and "split" in line and "epochs" in line


def test_datasets_and_splits_are_ranked_apart(tmp_path):
    write(tmp_path, run("v_cross", 30.0, dataset="vigor"), run("v_same", 60.0, dataset="vigor", split="same_area"),
          run("v_cross2", 20.0, dataset="vigor", seed=1), run("c", 90.0, dataset="cvusa", split="test"))
    data = json.loads(render(to_frame(load_records(tmp_path)), "json"))
    ranked = {section["title"]: [(row["rank"], row["run"]) for row in section["rows"]] for section in data["sections"]}
    assert ranked == {"cvusa/test": [(1, "c")], "vigor/cross_area": [(1, "v_cross"), (2, "v_cross2")],
                      "vigor/same_area": [(1, "v_same")]}
    markdown = render(to_frame(load_records(tmp_path)), "markdown")
    assert [line for line in markdown.splitlines() if line.startswith("### ")] == [
        "### cvusa/test", "### vigor/cross_area", "### vigor/same_area"]


def test_query_views_are_ranked_apart(tmp_path):
    narrow = {**run("narrow", 50.0), "conventions": {"fov": 90.0, "orientation": "known"}}
    write(tmp_path, run("full", 40.0), narrow)
    titles = [section["title"] for section in json.loads(render(to_frame(load_records(tmp_path)), "json"))["sections"]]
    assert titles == ["synthetic/cross_area, query view 360° known", "synthetic/cross_area, query view 90° known"]


def test_r1_percent_is_dropped_where_it_repeats_an_r_at_k(tmp_path):
    row = run("g", 10.0, gallery=1000)  # record(): R@10 = R@1% = r1 + 20 and + 30: make them equal, as k = 10 does
    row["metrics"]["R@1%"] = row["metrics"]["R@10"]
    row["conventions"] = {"one_percent": "floor"}  # k = max(1, 1000 // 100) = 10
    write(tmp_path, row)
    markdown = render(to_frame(load_records(tmp_path)), "markdown")
    header = markdown.splitlines()[0]
    assert "R@10" in header and "R@1%" not in header.replace("R@1% k", "")
    assert "R@1% is R@10 here (gallery of 1000" in markdown
    row["conventions"] = {"one_percent": "floor+1"}  # k = 11: no R@11 column, R@1% stays
    (tmp_path / "g" / "result.json").write_text(json.dumps(row))
    assert re.search(r"\|\s*R@1%\s*\|", render(to_frame(load_records(tmp_path)), "markdown"))


def test_a_start_checkpoint_names_the_run_it_came_from(tmp_path):
    start = "runs/20261205-pretrain-synthetic-mocov2-s0/checkpoints/pretrained_aerial.safetensors"
    assert start_name(start) == "20261205-pretrain-synthetic-mocov2-s0 (pretrained_aerial.safetensors)"
    assert start_name("/tmp/weights.safetensors") == "weights.safetensors"  # a file outside a run: its name
    write(tmp_path, run("r", 10.0, ground_init="/x/runs/p2/checkpoints/model.safetensors",
                        pretrainer="mocov2", pretrain_branches="aerial", pretrain_data="val", pretrain_from=start))
    table = finished(tmp_path)
    assert table.loc[0, "ground init"] == "p2 (model.safetensors)"
    assert "20261205-pretrain-synthetic-mocov2-s0" in table.loc[0, "pretraining"]


def test_json_export_has_a_schema_version_and_snake_case_keys(tmp_path):
    write(tmp_path, run("a", 10.0), run("b", 12.0, seed=1), record("c", None, status="running"))
    for options in ({}, {"group_by": parse_group_by("all")}):
        data = json.loads(render(to_frame(load_records(tmp_path), uniformity=True, **options), "json"))
        assert data["schema_version"] == 1
        rows = [row for section in data["sections"] for row in section["rows"]] + data["unfinished"]
        keys = {key for row in rows for key in row}
        assert {"r_at_1", "r_at_1_pct", "wall_time_s", "rank"} <= keys
        assert all(re.fullmatch(r"[a-z0-9_]+", key) for key in keys), sorted(keys)
    assert {"n", "seeds", "r_at_1_ci95"} <= keys


def test_result_records_plugin_package_versions_and_the_gpu(tmp_path, monkeypatch):
    site = make_distribution(tmp_path / "site", "cvbench_extra_heads", "extra_heads", "",
                             {"extra": "extra_heads"})
    monkeypatch.syspath_prepend(str(site))
    recorder = RunRecorder(tmp_path / "run", RunSpec(), "run")
    written = json.loads((tmp_path / "run" / "result.json").read_text())["environment"]
    assert written["plugins"]["cvbench_extra_heads"] == "0.1" and "cvbench" in written["plugins"]
    assert written["gpu"] is None  # not a CUDA run
    assert recorder.record["environment"] == written
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert environment("cuda (NVIDIA H100 80GB HBM3)")["gpu"] == "NVIDIA H100 80GB HBM3"
    assert environment("cpu")["gpu"] is None


def test_metrics_keeps_the_named_columns_and_refuses_a_name_no_run_measured(tmp_path):
    write(tmp_path, run("a", 10.0), run("b", 20.0))
    result = cli("leaderboard", str(tmp_path), "--format", "csv", "--metrics", "R@5,R@1")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert "R@5" in header and "R@1" in header and "R@10" not in header and "R@1%" not in header
    refused = cli("leaderboard", str(tmp_path), "--metrics", "R@1,mAP")
    assert refused.returncode == 2
    assert refused.stderr == ("error: --metrics: 'mAP' measured by none of the listed runs; they measured: "
                              "R@1, R@5, R@10, R@1%\n")


def test_the_terminal_table_shows_six_metrics_and_names_the_others_under_it(tmp_path):
    many = {"R@1": 10.0, "R@5": 20.0, "R@10": 30.0, "R@1%": 40.0, "AP": 15.0, "error_median_m": 99.0,
            "acc@1m": 1.0, "acc@5m": 2.0}
    write(tmp_path, {**run("a", 10.0), "metrics": many}, {**run("b", 12.0), "metrics": {**many, "R@1": 12.0}})
    result = cli("leaderboard", str(tmp_path), env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "R@1 " in line or "R@1 ┃" in line)
    assert "error_median_m" in header and "acc@1m" not in header
    assert "Also measured: acc@1m, acc@5m (show them with --metrics NAMES" in " ".join(result.stdout.split())
    chosen = cli("leaderboard", str(tmp_path), "--metrics", "R@1,acc@5m", env={"COLUMNS": "300"})
    assert "acc@5m" in chosen.stdout and "Also measured" not in chosen.stdout
