"""`cvbench data check` on damaged copies, and how runs treat bad images (`--bad-images`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli
from vigor_layout import make_vigor, panorama_name, tile_name

from cvbench.contract.registry import create
from cvbench.data.check import check_dataset
from cvbench.errors import CvbenchError
from cvbench.runs.assemble import resolve_spec
from cvbench.runs.runner import run
from cvbench.runs.subsets import Data, pretraining_set
from cvbench.spec import RunSpec

WIDE = {"COLUMNS": "1000"}  # rich wraps at the terminal width; long tmp paths would be split


def damage(root: Path) -> dict[str, str]:
    """A truncated panorama, a bad label line, a greyscale tile and a missing city folder."""
    pano = root / "NewYork" / "panorama" / panorama_name("NewYork", 1)
    pano.write_bytes(pano.read_bytes()[:200])
    labels = root / "splits" / "Seattle" / "pano_label_balanced.txt"
    lines = labels.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:12])
    labels.write_text("\n".join(lines) + "\n")
    from PIL import Image

    tile = root / "Chicago" / "satellite" / tile_name("Chicago", 0)
    Image.open(tile).convert("L").save(tile)
    return {"pano": str(pano), "labels": f"{labels}:3", "tile": str(tile)}


def test_data_check_reports_each_problem_with_file_and_line(tmp_path):
    root = make_vigor(tmp_path / "VIGOR")
    culprits = damage(root)
    result = cli("data", "check", "--dataset", "vigor", "--data-root", str(root), "--quiet", env=WIDE)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert f"{culprits['pano']}: unreadable image" in out
    assert f"{culprits['labels']}: expected 13 space-separated fields" in out
    assert f"{culprits['tile']}: image mode L, not RGB" in out
    assert "2 errors, 1 warnings" in out
    assert "cross_area" in out and "same_area" in out

    missing_city = tmp_path / "broken"
    make_vigor(missing_city)
    for child in (missing_city / "Seattle" / "panorama").iterdir():
        child.unlink()
    (missing_city / "Seattle" / "panorama").rmdir()
    result = cli("data", "check", "--dataset", "vigor", "--data-root", str(missing_city), "--quiet", env=WIDE)
    assert result.returncode == 2
    err = result.stderr
    assert f"missing: {missing_city / 'Seattle' / 'panorama'}" in err
    assert "Expected layout:" in err and "satellite_list.txt" in err


def test_data_check_on_a_clean_copy_passes_and_decodes_each_file_once(tmp_path):
    root = make_vigor(tmp_path / "VIGOR")
    report = check_dataset(create("dataset", "vigor", root))
    assert not report.problems
    on_disk = sum(1 for _ in root.glob("*/panorama/*")) + sum(1 for _ in root.glob("*/satellite/*"))
    assert report.images_checked == on_disk  # both protocols share the files: each decoded once
    counts = {(c.split, c.subset): (c.queries, c.references) for c in report.counts}
    assert counts[("cross_area", "train")] == (8, 10) and counts[("same_area", "val")] == (4, 20)


def test_unknown_split_is_named(tmp_path):
    root = make_vigor(tmp_path / "VIGOR")
    result = cli("data", "check", "--dataset", "vigor", "--data-root", str(root), "--split", "nowhere")
    assert result.returncode == 2 and "cross_area" in result.stderr


def smoke(root: Path, runs: Path, **extra) -> RunSpec:
    return RunSpec(preset="smoke", dataset="vigor", data_root=str(root), epochs=1, batch_size=4,
                   eval_batch_size=8, **extra)


def test_bad_images_fail_names_the_file_and_skip_leaves_the_pair_out(tmp_path):
    root = make_vigor(tmp_path / "VIGOR")
    pano = root / "Chicago" / "panorama" / panorama_name("Chicago", 1)  # a cross_area val query
    pano.write_bytes(pano.read_bytes()[:200])
    with pytest.raises(CvbenchError, match=panorama_name("Chicago", 1).replace(".", r"\.")):
        run(smoke(root, tmp_path), tmp_path / "fail", quiet=True)
    failed = json.loads(next((tmp_path / "fail").glob("*/result.json")).read_text())
    assert failed["status"] == "failed" and "truncated" in failed["error"].lower()

    with pytest.warns(UserWarning, match=r"skipped 1 unreadable images of vigor cross_area val"):
        run_dir = run(smoke(root, tmp_path, bad_images="skip"), tmp_path / "skip", quiet=True)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "finished" and result["spec"]["bad_images"] == "skip"


def test_auto_sizes_come_from_the_dataset(tmp_path):
    root = make_vigor(tmp_path / "VIGOR")
    spec = resolve_spec(RunSpec(preset="paper", dataset="vigor", data_root=str(root)))
    assert (spec.ground_size, spec.aerial_size) == ((224, 448), (224, 224))
    spec = resolve_spec(RunSpec(preset="paper", dataset="vigor", data_root=str(root), ground_size=(64, 128)))
    assert (spec.ground_size, spec.aerial_size) == ((64, 128), (224, 224))


def test_same_area_pretraining_sees_each_tile_once(tmp_path):
    root = make_vigor(tmp_path / "VIGOR")
    dataset = create("dataset", "vigor", root)
    train, val = dataset.load("same_area", "train"), dataset.load("same_area", "val")
    data = Data("same_area", train, val, None, None)
    spec = RunSpec(pretrain_data="all")
    images, meta, indices = pretraining_set(spec, data, "aerial")
    assert len(images) == len(meta) == 20  # one shared gallery, not 40
    assert indices.tolist() == list(range(20))
    assert len(pretraining_set(spec, data, "ground")[0]) == len(train.ground) + len(val.ground)
    cross = Data("cross_area", dataset.load("cross_area", "train"), dataset.load("cross_area", "val"), None, None)
    assert len(pretraining_set(spec, cross, "aerial")[0]) == 20
