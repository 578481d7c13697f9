"""The CVACT plugin on small copies in the authors' layout: a real ACT_data.mat and tiny JPEGs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import smoke_run
from cvact_layout import REMOVE, column, make_cvact
from cvbench.metrics import recall
from cvbench_plugins.datasets.cvact import Cvact

import cvbench
import cvbench.data.layout
from cvbench.data.problems import DatasetWarning, collect_problems
from cvbench.errors import DatasetFormatError, DatasetNotFoundError, SpecError

# Five valSetAll points around A: B 10 m east, C 24.9 m north, D 25.1 m west, E 100 m east.
A = (690000.0, 6090000.0)
NEAR = np.array([A, (A[0] + 10.0, A[1]), (A[0], A[1] + 24.9), (A[0] - 25.1, A[1]), (A[0] + 100.0, A[1])])


@pytest.fixture
def root(tmp_path):
    return make_cvact(tmp_path / "cvact")


def near_root(tmp_path):
    """Pairs 1..2 train, 3 val; valSetAll = 3..7 placed at NEAR."""
    utm = np.concatenate([[[0.0, 0.0], [500.0, 0.0]], NEAR])
    return make_cvact(tmp_path / "near", count=7, train=[1, 2], val=[3], val_all=[3, 4, 5, 6, 7], utm=utm)


def test_splits_sizes_and_sizes_of_images(root):
    dataset = Cvact(root)
    assert dataset.splits() == ["val", "test"]
    assert dataset.image_sizes() == {"ground": (112, 616), "aerial": (256, 256)}
    sizes = {(split, subset): dataset.load(split, subset).num_queries for split in ("val", "test")
             for subset in ("train", "val")}
    assert sizes == {("val", "train"): 6, ("val", "val"): 4, ("test", "train"): 6, ("test", "val"): 6}
    for split, subset in sizes:
        pairs = dataset.load(split, subset)
        assert pairs.num_references == pairs.num_queries
        assert np.array_equal(pairs.positives, np.arange(pairs.num_queries))
    assert dataset.load("val", "val").also_correct is None and dataset.load("val", "train").also_correct is None


def test_one_based_indices_select_the_listed_panoramas(tmp_path):
    utm = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [70.0, 80.0]])
    root = make_cvact(tmp_path / "cvact", count=4, train=[1, 3], val=[4], val_all=[2], utm=utm)
    pairs = Cvact(root).load("val", "train")
    for meta in (pairs.ground_meta, pairs.aerial_meta):
        assert list(meta["name"]) == ["pano000", "pano002"]
        assert list(meta["index"]) == [0, 2]
        assert list(meta["city"]) == ["Canberra", "Canberra"]
        assert list(meta["x"]) == [10.0, 50.0] and list(meta["y"]) == [20.0, 60.0]
    small = root / "ANU_data_small"
    assert pairs.ground.paths == [small / "streetview" / "pano000_grdView.jpg", small / "streetview" / "pano002_grdView.jpg"]
    assert pairs.aerial.paths == [small / "satview_polish" / "pano000_satView_polish.jpg",
                                  small / "satview_polish" / "pano002_satView_polish.jpg"]
    assert pairs.ground[1].shape == (16, 32, 3) and pairs.aerial[1].shape == (16, 16, 3)
    assert list(Cvact(root).load("val", "val").ground_meta["name"]) == ["pano003"]


def test_space_padded_ids_are_stripped(tmp_path):
    ids = ["ab  ", "abcd", "abc "]
    root = make_cvact(tmp_path / "cvact", count=3, ids=ids, train=[1, 2, 3], val=[1], val_all=[1])
    pairs = Cvact(root).load("val", "train")
    assert list(pairs.ground_meta["name"]) == ["ab", "abcd", "abc"]
    assert pairs.ground.paths[0].name == "ab_grdView.jpg"


def test_test_split_reads_anu_data_test_and_tiles_within_25_m(tmp_path):
    dataset = Cvact(near_root(tmp_path))
    pairs = dataset.load("test", "val")
    assert list(pairs.ground_meta["index"]) == [2, 3, 4, 5, 6]
    assert all(path.parent.parent.name == "ANU_data_test" for path in pairs.ground.paths + pairs.aerial.paths)
    assert dataset.load("test", "train").ground.paths[0].parent.parent.name == "ANU_data_small"
    # A-B 10 m, A-C 24.9 m, A-D 25.1 m, A-E 100 m, B-C 26.8 m: only A-B and A-C are within 25 m.
    assert pairs.also_correct.tolist() == [[1, 2], [0, -1], [0, -1], [-1, -1], [-1, -1]]


def test_distance_option_changes_the_neighbours(tmp_path):
    root = near_root(tmp_path)
    wider = Cvact(root, distance="30").load("test", "val").also_correct
    # Within 30 m: A-B 10, A-C 24.9, A-D 25.1, B-C 26.8.
    assert wider.tolist() == [[1, 2, 3], [0, 2, -1], [0, 1, -1], [0, -1, -1], [-1, -1, -1]]
    assert Cvact(root, distance=5.0).load("test", "val").also_correct.shape == (5, 0)


def test_also_correct_makes_a_near_miss_count(tmp_path):
    pairs = Cvact(near_root(tmp_path)).load("test", "val")
    reference = np.eye(5)
    query = np.eye(5)
    query[0] = reference[1]  # A retrieves B, 10 m away; D retrieves A, 25.1 m away
    query[3] = reference[0]
    plain = recall(query, reference, pairs.positives, ks=(1,))
    counted = recall(query, reference, pairs.positives, ks=(1,), also_correct=pairs.also_correct)
    assert plain["R@1"] == pytest.approx(60.0) and counted["R@1"] == pytest.approx(80.0)


def test_pairs_with_missing_images_are_skipped_with_a_count(root):
    small = root / "ANU_data_small"
    (small / "streetview" / "pano007_grdView.jpg").unlink()
    (small / "satview_polish" / "pano008_satView_polish.jpg").unlink()
    (small / "streetview" / "pano009_grdView.jpg").unlink()
    (small / "satview_polish" / "pano009_satView_polish.jpg").unlink()
    with pytest.warns(DatasetWarning, match="skipped 3 CVACT val pairs") as caught:
        pairs = Cvact(root).load("val", "val")
    assert "pano007_grdView.jpg" in str(caught[0].message)
    assert list(pairs.ground_meta["name"]) == ["pano006"]
    with collect_problems() as found:
        Cvact(root).load("val", "val")
    assert [p.path for p in found] == [str(small / "streetview" / "pano007_grdView.jpg"),
                                       str(small / "satview_polish" / "pano008_satView_polish.jpg"),
                                       str(small / "streetview" / "pano009_grdView.jpg")]
    assert not any(p.fatal for p in found) and "pano009_satView_polish.jpg" in found[2].message


def test_neighbours_are_counted_among_the_pairs_kept(tmp_path):
    root = near_root(tmp_path)
    (root / "ANU_data_test" / "satview_polish" / "pano003_satView_polish.jpg").unlink()  # B
    with pytest.warns(DatasetWarning, match="skipped 1 "):
        pairs = Cvact(root).load("test", "val")
    assert list(pairs.ground_meta["name"]) == ["pano002", "pano004", "pano005", "pano006"]
    assert pairs.also_correct.tolist() == [[1], [0], [-1], [-1]]


def test_each_folder_is_listed_once(root, monkeypatch):
    listed = []

    def listing(folder):
        listed.append(folder)
        return set(os.listdir(folder))

    monkeypatch.setattr(cvbench.data.layout, "folder_names", listing)
    dataset = Cvact(root)
    for split in ("val", "test"):
        for subset in ("train", "val"):
            assert dataset.load(split, subset) is dataset.load(split, subset)
    assert sorted(listed) == sorted(set(listed)) and len(listed) == 4


@pytest.mark.parametrize("mat, key", [
    ({"panoIds": REMOVE}, "panoIds"),
    ({"utm": REMOVE}, "utm"),
    ({"trainSet": REMOVE}, "trainSet.trainInd"),
    ({"valSet": {"other": column([1])}}, "valSet.valInd"),
    ({"valSetAll": REMOVE}, "valSetAll.valInd"),
])
def test_a_missing_key_names_the_file_and_key(root, mat, key):
    root = make_cvact(root, mat=mat)
    dataset = Cvact(root)  # the constructor reads no .mat
    with pytest.raises(DatasetFormatError, match=rf"ACT_data\.mat: has no '{key}'"):
        dataset.load("val", "train")
    with collect_problems() as found:
        Cvact(root).load("val", "train")
    assert any(f"'{key}'" in p.message and p.path.endswith("ACT_data.mat") and p.fatal for p in found)


@pytest.mark.parametrize("train, message", [
    ([1, 0, 3], r"'trainSet\.trainInd' holds 1 index outside 1\.\.12 \(0\)"),
    ([13, 2], r"'trainSet\.trainInd' holds 1 index outside 1\.\.12 \(13\)"),
    ([1.5, 2], r"'trainSet\.trainInd' holds 1 non-integer index \(1\.5\)"),
])
def test_a_bad_index_names_the_key(root, train, message):
    make_cvact(root, train=train)
    with pytest.raises(DatasetFormatError, match=message):
        Cvact(root).load("val", "train")
    with collect_problems() as found:
        pairs = Cvact(root).load("val", "train")
    assert len(found) == 1 and "ACT_data.mat" in found[0].path
    assert pairs.num_queries == len(train) - 1  # the good indices are kept


def test_a_wrongly_shaped_utm_is_a_format_error(root):
    make_cvact(root, mat={"utm": np.zeros((12, 1))})
    with pytest.raises(DatasetFormatError, match=r"'utm' is float64 .*expected \(12, 2\)"):
        Cvact(root).load("val", "val")


def test_a_file_that_is_no_mat_is_a_format_error(root):
    (root / "ACT_data.mat").write_text("not matlab")
    with pytest.raises(DatasetFormatError, match="ACT_data.mat"):
        Cvact(root).load("val", "val")


def test_a_matlab_v73_file_is_named_as_such(root):
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM"
    (root / "ACT_data.mat").write_bytes(header + bytes(512))
    with pytest.raises(DatasetFormatError, match=r"ACT_data.mat: is a MATLAB v7.3 \(HDF5\) file.*-v7"):
        Cvact(root).load("val", "val")


@pytest.mark.parametrize("where", ["nothing", None])
def test_a_wrong_root_shows_the_layout_and_source(tmp_path, where):
    with pytest.raises(DatasetNotFoundError) as error:
        Cvact(tmp_path / where if where else None)
    text = str(error.value)
    assert "ANU_data_small/" in text and "satview_polish/<id>_satView_polish.jpg" in text
    assert "https://github.com/Liumouliu/OriCNN" in text and "--data-root" in text


def test_a_root_lacking_pieces_lists_each(tmp_path):
    make_cvact(tmp_path)
    (tmp_path / "ACT_data.mat").unlink()
    for image in (tmp_path / "ANU_data_small" / "satview_polish").iterdir():
        image.unlink()
    (tmp_path / "ANU_data_small" / "satview_polish").rmdir()
    with pytest.raises(DatasetNotFoundError) as error:
        Cvact(tmp_path)
    assert f"missing: {tmp_path / 'ACT_data.mat'}" in str(error.value)
    assert f"missing: {tmp_path / 'ANU_data_small' / 'satview_polish'}" in str(error.value)


def test_split_test_needs_anu_data_test(tmp_path):
    root = make_cvact(tmp_path, test_folder=False)
    dataset = Cvact(root)
    assert dataset.load("val", "val").num_queries == 4
    with pytest.raises(DatasetNotFoundError, match="ANU_data_test") as error:
        dataset.load("test", "val")
    assert "OriCNN" in str(error.value)


@pytest.mark.parametrize("options, match", [
    ({"distance": "far"}, "distance"),
    ({"distance": 0}, "distance"),
    ({"distance": "-3"}, "distance"),
    ({"distance": True}, "distance"),
    ({"radius": 10}, "accepts: distance"),
])
def test_bad_options_are_spec_errors(root, options, match):
    with pytest.raises(SpecError, match=match):
        Cvact(root, **options)


def test_bad_split_or_subset_is_a_spec_error(root):
    with pytest.raises(SpecError, match="val, test"):
        Cvact(root).load("same_area", "val")
    with pytest.raises(SpecError, match="subset"):
        Cvact(root).load("val", "test")


def test_registered_as_cvact(root):
    assert "cvact" in cvbench.plugins()["dataset"]
    assert cvbench.create("dataset", "cvact", root, distance="10").distance == 10.0


def test_smoke_run_on_split_val(tmp_path):
    root = make_cvact(tmp_path / "cvact", count=20, train=range(1, 13), val=range(13, 21), val_all=range(13, 21))
    record = smoke_run("cvact", root, tmp_path / "runs")
    assert record["status"] == "finished" and record["split"] == "val"
    assert record["num_queries"] == 8 and record["num_references"] == 8
