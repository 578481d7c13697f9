"""The cvusa plugin on a tiny copy of CVUSA's real layout: pairs, galleries, bad lines, missing files, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smoke_run
from cvbench_plugins.datasets.cvusa import CVUSA
from cvusa_layout import TRAIN_IDS, VAL_IDS, cvusa_line, make_cvusa

import cvbench.data.layout
from cvbench.contract.registry import create
from cvbench.data.problems import DatasetWarning, collect_problems
from cvbench.errors import DatasetFormatError, DatasetNotFoundError, SpecError


@pytest.fixture
def root(tmp_path):
    return make_cvusa(tmp_path / "CVUSA")


def test_one_val_protocol_with_one_tile_per_pair_in_file_order(root):
    dataset = create("dataset", "cvusa", root)
    assert dataset.splits() == ["val"]
    assert dataset.image_sizes() == {"ground": (112, 616), "aerial": (256, 256)}
    for subset, ids in (("train", TRAIN_IDS), ("val", VAL_IDS)):
        pairs = dataset.load("val", subset)
        assert pairs.num_queries == pairs.num_references == len(ids)
        assert pairs.positives.tolist() == list(range(len(ids)))
        assert pairs.semi_positives is None and pairs.also_correct is None
        # The first csv column is the aerial tile, the second the panorama.
        assert pairs.aerial.paths[2] == root / "bingmap" / "19" / f"{ids[2]:07d}.jpg"
        assert pairs.ground.paths[2] == root / "streetview" / "panos" / f"{ids[2]:07d}.jpg"
        assert pairs.ground_meta["name"].tolist() == [f"{i:07d}" for i in ids]
        assert pairs.aerial_meta["name"].tolist() == [f"{i:07d}" for i in ids]
        assert "city" not in pairs.ground_meta
    val = dataset.load("val", "val")
    assert val.ground[0].shape == (16, 32, 3) and val.aerial[0].shape == (16, 16, 3)
    assert np.abs(val.ground[0].astype(int).mean((0, 1)) - val.aerial[0].astype(int).mean((0, 1))).max() < 8


def test_each_image_folder_is_listed_once_and_subsets_are_parsed_once(root, monkeypatch):
    listed = []
    monkeypatch.setattr(cvbench.data.layout, "folder_names", lambda folder: listed.append(folder) or
                        {p.name for p in folder.iterdir()})
    dataset = CVUSA(root)
    first = dataset.load("val", "train")
    assert sorted(f.name for f in listed) == ["19", "panos"]
    assert dataset.load("val", "train") is first and len(listed) == 2


def test_a_line_without_three_fields_names_file_and_line(root):
    split_file = root / "splits" / "train-19zl.csv"
    lines = split_file.read_text().splitlines()
    lines[2] = "bingmap/19/0000003.jpg,streetview/panos/0000003.jpg"
    lines[6] = ",streetview/panos/0000007.jpg,streetview/annotations/0000007.png"
    split_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"train-19zl\.csv:3: expected 3 comma-separated fields"):
        CVUSA(root).load("val", "train")
    with collect_problems() as found:
        pairs = CVUSA(root).load("val", "train")
    assert [(p.line, p.fatal) for p in found] == [(3, True), (7, True)]
    assert all(p.path == str(split_file) for p in found)
    assert pairs.num_queries == len(TRAIN_IDS) - 2
    assert pairs.ground_meta["name"].tolist() == [f"{i:07d}" for i in TRAIN_IDS if i not in (3, 7)]


def test_pairs_with_missing_files_are_skipped_with_one_warning(root):
    (root / "streetview" / "panos" / f"{VAL_IDS[1]:07d}.jpg").unlink()
    (root / "bingmap" / "19" / f"{VAL_IDS[4]:07d}.jpg").unlink()
    with open(root / "splits" / "val-19zl.csv", "a") as handle:
        handle.write("\n" + cvusa_line(999) + "\n")  # a blank line, then a pair with neither file
    with pytest.warns(DatasetWarning, match=r"skipped 3 CVUSA val val pairs whose image files are missing: "
                                            r".*val-19zl\.csv:2: missing image .*0000102\.jpg"):
        pairs = CVUSA(root).load("val", "val")
    kept = [i for i in VAL_IDS if i not in (VAL_IDS[1], VAL_IDS[4])]
    assert pairs.ground_meta["name"].tolist() == [f"{i:07d}" for i in kept]
    assert pairs.positives.tolist() == list(range(len(kept)))
    with collect_problems() as found:
        CVUSA(root).load("val", "val")
    assert [(p.line, p.fatal) for p in found] == [(2, False), (5, False), (8, False)]
    assert "bingmap" in found[2].message and "panos" in found[2].message


def test_a_wrong_root_shows_the_layout_and_where_to_get_cvusa(tmp_path, root):
    with pytest.raises(DatasetNotFoundError, match="needs --data-root") as no_root:
        CVUSA(None)
    assert "mvrl.cse.wustl.edu/datasets/cvusa" in str(no_root.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as error:
        CVUSA(tmp_path / "empty")
    message = str(error.value)
    for expected in ("missing: ", "splits/train-19zl.csv", "splits/val-19zl.csv", "bingmap/19", "streetview/panos",
                     "https://mvrl.cse.wustl.edu/datasets/cvusa", "--data-root"):
        assert expected in message
    (root / "splits" / "val-19zl.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing: .*val-19zl.csv") as partial:
        CVUSA(root)
    assert "train-19zl.csv" not in str(partial.value).split("Expected layout")[0]


def test_options_and_unknown_splits_are_rejected(root):
    with pytest.raises(SpecError, match="no option mode; it accepts: allow_outside_root"):
        CVUSA(root, mode="polar")
    with pytest.raises(SpecError, match="offers: val"):
        CVUSA(root).load("test", "val")


def test_a_smoke_run_on_cvusa_finishes(tmp_path, root):
    record = smoke_run("cvusa", root, tmp_path / "runs")
    assert record["status"] == "finished" and record["split"] == "val"
    assert record["num_queries"] == len(VAL_IDS) and record["num_references"] == len(VAL_IDS)
