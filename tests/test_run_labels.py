"""``--name`` and ``--tag`` label a run (folder, record, leaderboard, configs, grids) and never change its setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import cli
from test_leaderboard import record

from cvbench.bench.scheduler import identity, row_jobs
from cvbench.bench.schema import load_bench
from cvbench.runs.folder import RunFolder
from cvbench.runs.leaderboard import load_records, render, to_frame
from cvbench.runs.records import RunRecorder
from cvbench.spec import RunSpec, from_record
from cvbench.training.checkpoint import check_made_with


def test_the_name_goes_into_the_folder_name_in_a_safe_form_and_the_record_keeps_both(tmp_path):
    spec = RunSpec(name="my baseline ✓", tags=("ablation", "table 4.4"), dataset="synthetic", pretrainer="none",
                   head="safa", seed=3)
    folder = RunFolder.create(tmp_path, spec)
    assert re.fullmatch(r"\d{8}-\d{6}-run-my_baseline_-synthetic-none-safa-s3", folder.name)
    RunRecorder(folder, spec, "run").write_result("finished")
    stored = json.loads(folder.result_file.read_text())["spec"]
    assert (stored["name"], stored["tags"]) == ("my baseline ✓", ["ablation", "table 4.4"])
    assert json.loads(folder.spec_file.read_text())["tags"] == ["ablation", "table 4.4"]
    long = RunFolder.create(tmp_path, RunSpec(name="x" * 300, dataset="synthetic", pretrainer="none", head="safa"))
    assert "-run-" + "x" * 64 + "-synthetic-" in long.name  # a file name holds at most 255 bytes
    unnamed = RunFolder.create(tmp_path, RunSpec(dataset="synthetic", pretrainer="none", head="safa"))
    assert re.fullmatch(r"\d{8}-\d{6}-run-synthetic-none-safa-s0", unnamed.name)


def test_a_record_from_before_labels_reads_without_them():
    spec = from_record({"dataset": "synthetic", "seed": 1})
    assert spec.name is None and spec.tags == ()


@pytest.mark.parametrize("flag,value", [("--name", "a/b"), ("--name", " "), ("--name", "bell\x07"),
                                        ("--tag", "a,b"), ("--tag", "")])
def test_a_label_that_cannot_name_a_folder_or_filter_is_refused_before_the_folder(tmp_path, flag, value):
    result = cli("run", "--preset", "smoke", flag, value, "--runs-dir", str(tmp_path / "runs"), "-q")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {flag} ") and "expected" in line
    assert not (tmp_path / "runs").exists()


def test_print_config_round_trips_the_labels(tmp_path):
    first = cli("run", "--preset", "smoke", "--name", "baseline", "--tag", "a", "--tag", "b", "--print-config")
    assert first.returncode == 0, first.stderr
    assert 'name = "baseline"' in first.stdout and re.search(r'tags = \[\s*"a",\s*"b",?\s*\]', first.stdout)
    (tmp_path / "row.toml").write_text(first.stdout)
    again = cli("run", "--config", str(tmp_path / "row.toml"), "--print-config")
    assert again.stdout == first.stdout
    override = cli("run", "--config", str(tmp_path / "row.toml"), "--tag", "c", "--print-config")
    assert re.search(r'tags = \[\s*"c",?\s*\]', override.stdout)


def _labelled(runs: Path) -> Path:
    """Four finished runs: two seeds of one setting under different names and tags, a third alike, a fourth apart."""
    rows = [record("r0", 10.0, seed=0, name="base", tags=["paper", "fast"]),
            record("r1", 20.0, seed=1, name="base-again", tags=["paper"]),
            record("r2", 30.0, seed=2),
            record("r3", 40.0, seed=0, head="gem", tags=["fast"])]
    for row in rows:
        (runs / row["run"]).mkdir(parents=True)
        (runs / row["run"] / "result.json").write_text(json.dumps(row))
    return runs


def test_the_leaderboard_shows_and_filters_by_name_and_tag(tmp_path):
    runs = _labelled(tmp_path)
    table = pd.read_csv(pd.io.common.StringIO(render(to_frame(load_records(runs)), "csv")))
    assert list(table.columns[:5]) == ["section", "rank", "run", "name", "tags"]
    assert table.set_index("run")[["name", "tags"]].fillna("").to_dict("index") == {
        "r3": {"name": "", "tags": "fast"}, "r2": {"name": "", "tags": ""},
        "r1": {"name": "base-again", "tags": "paper"}, "r0": {"name": "base", "tags": "paper,fast"}}

    def listed(*where: str) -> list[str]:
        result = cli("leaderboard", str(runs), "--format", "json", *(f"--where={w}" for w in where))
        assert result.returncode == 0, result.stderr
        return [row["run"] for section in json.loads(result.stdout)["sections"] for row in section["rows"]]

    assert listed("tag=fast") == ["r3", "r0"]
    assert listed("tag=paper", "tag=fast") == ["r0"] and listed("tag=fast,paper") == ["r0"]
    assert listed("name=base") == ["r0"] and listed("tag=none") == []
    empty = cli("leaderboard", str(runs), "--where", "tag=none")
    assert empty.returncode == 0 and f"no finished runs in {runs} with --where tag=none" in " ".join(empty.stdout.split())


def test_labels_never_split_a_setting_when_seeds_merge(tmp_path):
    runs = _labelled(tmp_path)
    result = cli("leaderboard", str(runs), "--group-by", "all", "--format", "csv")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(pd.io.common.StringIO(result.stdout)).set_index("head")
    assert table.loc["safa", "n"] == 3 and table.loc["safa", "R@1"] == pytest.approx(20.0)  # seeds 0, 1, 2
    assert "name" not in table and "tags" not in table  # the merged runs' labels differ: no one label is theirs
    by_name = cli("leaderboard", str(runs), "--group-by", "name", "--format", "csv")
    assert by_name.returncode == 0 and len(pd.read_csv(pd.io.common.StringIO(by_name.stdout))) == 3
    a, b = RunSpec(dataset="synthetic", seed=0), RunSpec(dataset="synthetic", seed=0, name="x", tags=("t",))
    assert identity(a.to_dict()) == identity(b.to_dict())  # a grid does not run a relabelled row again


def test_a_grid_row_labels_its_runs_with_its_name_and_tags(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[bench]\nseeds = [0, 1]\n[defaults]\npreset = "smoke"\ntags = ["grid"]\n'
                    '[[rows]]\nname = "base"\n\n[[rows]]\nname = "tagged"\ntags = ["grid", "gem"]\nhead = "gem"\n'
                    '[[sweep]]\nname = "lr"\nlr = [0.1]\n')
    jobs = row_jobs(load_bench(grid), {})
    assert [(job.row, job.seed, job.spec.name, job.spec.tags) for job in jobs] == [
        ("base", 0, "base", ("grid",)), ("base", 1, "base", ("grid",)),
        ("tagged", 0, "tagged", ("grid", "gem")), ("tagged", 1, "tagged", ("grid", "gem")),
        ("lr_lr=0.1", 0, "lr_lr=0.1", ("grid",)), ("lr_lr=0.1", 1, "lr_lr=0.1", ("grid",))]


def test_a_relabelled_spec_json_still_owns_its_model(tmp_path):
    made = RunSpec(dataset="synthetic", seed=0, epochs=2)
    check_made_with(tmp_path / "model.safetensors", {"spec": made.to_dict()},
                    RunSpec(dataset="synthetic", seed=0, epochs=2, name="renamed", tags=("t",)), "spec.json", "run")


def test_a_hand_edited_record_whose_tags_are_not_a_list_is_unreadable_naming_the_field(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text(json.dumps(record("r", 10.0, tags="paper")))
    (listed,) = load_records(tmp_path)
    assert listed["status"] == "unreadable" and "'spec.tags'" in listed["error"]
