"""The vigor dataset plugin on a small VIGOR copy in the real layout (see vigor_layout.py), against hand-computed truth."""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
from conftest import smoke_run
from cvbench_plugins.datasets.vigor import Vigor, panorama_location, satellite_location
from vigor_layout import make_vigor, panorama_name, tile_name

import cvbench
from cvbench.data.problems import DatasetWarning, collect_problems
from cvbench.errors import DatasetFormatError, DatasetNotFoundError, SpecError

URL = "https://github.com/Jeff-Zilence/VIGOR"
# Panorama j's semi-positives are tiles j+1, j+2, j+3 (mod 4) of its city.
SEMIS = [[1, 2, 3], [2, 3, 0], [3, 0, 1], [0, 1, 2]]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_vigor(tmp_path_factory.mktemp("vigor"))


@pytest.fixture
def own_root(tmp_path):
    """A copy the test may damage."""
    return make_vigor(tmp_path / "vigor")


def test_registered_with_default_split_first(root):
    assert "vigor" in cvbench.plugins()["dataset"]
    dataset = cvbench.create("dataset", "vigor", root)
    assert dataset.splits() == ["cross_area", "same_area", "cross_area_swapped"]
    assert dataset.image_sizes() == {"ground": (224, 448), "aerial": (224, 224)}


def test_cross_area_train_is_new_york_then_seattle_against_their_tiles(root):
    train = Vigor(root).load("cross_area", "train")
    assert train.num_queries == 8 and train.num_references == 10
    assert list(train.ground_meta["city"]) == ["NewYork"] * 4 + ["Seattle"] * 4
    assert list(train.aerial_meta["city"]) == ["NewYork"] * 5 + ["Seattle"] * 5
    # tile 4 of each city is in no label line but is in the gallery
    assert train.aerial_meta["name"][4] == tile_name("NewYork", 4)
    assert train.aerial.paths[9] == root / "Seattle" / "satellite" / tile_name("Seattle", 4)
    assert train.ground.paths[5] == root / "Seattle" / "panorama" / panorama_name("Seattle", 1)
    assert train.positives.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert train.semi_positives.tolist() == SEMIS + [[5 + k for k in row] for row in SEMIS]


def test_cross_area_val_is_san_francisco_then_chicago(root):
    val = Vigor(root).load("cross_area", "val")
    assert val.num_queries == 8 and val.num_references == 10
    assert list(val.ground_meta["city"]) == ["SanFrancisco"] * 4 + ["Chicago"] * 4
    assert list(val.aerial_meta["city"]) == ["SanFrancisco"] * 5 + ["Chicago"] * 5
    assert val.positives.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert val.semi_positives[6].tolist() == [8, 5, 6]


def test_swapped_cross_area_trains_on_the_test_cities(root):
    dataset = Vigor(root)
    swapped_train, swapped_val = dataset.load("cross_area_swapped", "train"), dataset.load("cross_area_swapped", "val")
    assert list(swapped_train.ground_meta["city"]) == ["SanFrancisco"] * 4 + ["Chicago"] * 4
    assert list(swapped_val.ground_meta["city"]) == ["NewYork"] * 4 + ["Seattle"] * 4
    assert swapped_val.aerial.paths == dataset.load("cross_area", "train").aerial.paths


def test_same_area_shares_one_gallery_of_all_tiles(root):
    dataset = Vigor(root)
    train, val = dataset.load("same_area", "train"), dataset.load("same_area", "val")
    assert train.aerial is val.aerial and train.num_references == 20
    assert list(train.aerial_meta["city"][::5]) == ["NewYork", "Seattle", "SanFrancisco", "Chicago"]
    assert train.positives.tolist() == [0, 1, 2, 5, 6, 7, 10, 11, 12, 15, 16, 17]
    assert train.semi_positives[4].tolist() == [7, 8, 5]
    assert val.positives.tolist() == [3, 8, 13, 18]
    assert val.semi_positives.tolist() == [[0, 1, 2], [5, 6, 7], [10, 11, 12], [15, 16, 17]]
    assert dataset.load("same_area", "train") is train


def test_metadata_holds_offsets_and_locations(root):
    train = Vigor(root).load("cross_area", "train")
    ground, aerial = train.ground_meta, train.aerial_meta
    assert list(ground.columns) == ["city", "lat", "lon", "name", "offset_row_px", "offset_col_px"]
    assert list(aerial.columns) == ["city", "lat", "lon", "name"]
    # NewYork panorama 2: 0.002 + 0.0002 north and 0.002 - 0.0001 east of (40.71, -74.0)
    assert ground.loc[2, ["lat", "lon"]].tolist() == pytest.approx([40.7122, -73.9981])
    assert ground.loc[2, "name"] == panorama_name("NewYork", 2)
    assert ground.loc[2, ["offset_row_px", "offset_col_px"]].tolist() == [30.0, -60.0]
    assert aerial.loc[6, ["lat", "lon"]].tolist() == pytest.approx([47.601, -122.329])


def test_unparsable_names_give_nan_locations(own_root):
    (own_root / "Seattle" / "satellite" / "odd_tile.png").write_bytes(
        (own_root / "Seattle" / "satellite" / tile_name("Seattle", 0)).read_bytes())
    with open(own_root / "splits" / "Seattle" / "satellite_list.txt", "a") as listing:
        listing.write("odd_tile.png\n")
    aerial = Vigor(own_root).load("cross_area", "train").aerial_meta
    assert aerial.loc[10, "name"] == "odd_tile.png" and math.isnan(aerial.loc[10, "lat"])
    assert all(math.isnan(v) for v in panorama_location("panorama.jpg"))
    assert satellite_location("satellite_1.5_-2.25.png") == (1.5, -2.25)


@pytest.mark.parametrize("folder", ["splits__corrected", "splits"])
def test_corrected_labels_are_read_from_either_folder(tmp_path, folder):
    root = make_vigor(tmp_path, corrected=folder)
    train = Vigor(root, labels="corrected").load("cross_area", "train")
    assert train.ground_meta["offset_row_px"].tolist()[:2] == [110.0, 120.0]
    assert train.positives.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    if folder == "splits__corrected":
        original = Vigor(root, labels="original").load("cross_area", "train")
        assert original.ground_meta["offset_row_px"].tolist()[:2] == [10.0, 20.0]


def test_missing_corrected_labels_name_both_places(root):
    with pytest.raises(DatasetNotFoundError) as error:
        Vigor(root, labels="corrected").load("cross_area", "train")
    message = str(error.value)
    assert str(root / "splits__corrected" / "NewYork" / "pano_label_balanced__corrected.txt") in message
    assert str(root / "splits" / "NewYork" / "pano_label_balanced__corrected.txt") in message


def test_missing_panorama_and_positive_tile_are_skipped(own_root):
    missing_pano = own_root / "NewYork" / "panorama" / panorama_name("NewYork", 1)
    missing_tile = own_root / "Seattle" / "satellite" / tile_name("Seattle", 2)
    missing_pano.unlink()
    missing_tile.unlink()
    with pytest.warns(DatasetWarning) as caught:
        train = Vigor(own_root).load("cross_area", "train")
    messages = " ".join(str(w.message) for w in caught)
    assert str(missing_pano) in messages and str(missing_tile) in messages
    assert train.num_references == 9 and train.num_queries == 6
    # Seattle tiles 0, 1, 3, 4 now sit at 5, 6, 7, 8; Seattle panorama 2 (positive tile 2) is gone
    assert train.positives.tolist() == [0, 2, 3, 5, 6, 7]
    assert train.semi_positives.tolist() == [[1, 2, 3], [3, 0, 1], [0, 1, 2], [6, 7, -1], [7, 5, -1], [5, 6, -1]]
    with collect_problems() as found:
        Vigor(own_root).load("cross_area", "train")
    assert sorted(p.line for p in found if not p.fatal) == [2, 3, 3]  # pano line, tile list line, label line


def _break_new_york_labels(root):
    path = root / "splits" / "NewYork" / "pano_label_balanced.txt"
    lines = path.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:12])
    lines[2] = lines[2].replace(tile_name("NewYork", 2), "satellite_0.0_0.0.png")
    fields = lines[3].split()
    fields[6] = "north"
    lines[3] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_line_raises_naming_file_and_line(own_root):
    path = _break_new_york_labels(own_root)
    with pytest.raises(DatasetFormatError, match=f"{path}:2: expected 13 "):
        Vigor(own_root).load("cross_area", "train")


def test_collect_problems_lists_every_bad_line(own_root):
    path = _break_new_york_labels(own_root)
    with collect_problems() as found:
        train = Vigor(own_root).load("cross_area", "train")
    assert [(p.path, p.line) for p in found] == [(str(path), 2), (str(path), 3), (str(path), 4)]
    assert "satellite_0.0_0.0.png" in found[1].message and "'north'" in found[2].message
    assert train.num_queries == 5 and train.positives.tolist() == [0, 5, 6, 7, 8]


def test_wrong_root_shows_layout_and_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        Vigor(tmp_path / "nowhere")
    assert URL in str(error.value) and "satellite_list.txt" in str(error.value)
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        Vigor(None)


def test_missing_splits_folder_lists_what_is_missing(own_root):
    shutil.rmtree(own_root / "splits")
    with pytest.raises(DatasetNotFoundError) as error:
        Vigor(own_root)
    message = str(error.value)
    assert f"missing: {own_root / 'splits' / 'Chicago' / 'satellite_list.txt'}" in message
    assert "panorama/" in message and "pano_label_balanced.txt" in message and URL in message


def test_bad_options_are_spec_errors(root):
    with pytest.raises(SpecError, match="labels"):
        Vigor(root, cities="Chicago")
    with pytest.raises(SpecError, match="original, corrected"):
        Vigor(root, labels="fixed")
    with pytest.raises(SpecError, match="cross_area"):
        Vigor(root).load("one_area", "train")
    assert Vigor(root, labels=" Corrected ").labels == "corrected"


def test_smoke_run_end_to_end(root, tmp_path):
    record = smoke_run("vigor", root, tmp_path / "runs")
    assert record["status"] == "finished" and record["num_queries"] == 8 and record["num_references"] == 10
    assert "hit_rate" in record["metrics"]


def test_no_warnings_on_a_complete_copy(root):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        dataset = Vigor(root)
        for split in dataset.splits():
            for subset in ("train", "val"):
                pairs = dataset.load(split, subset)
                assert np.all(pairs.semi_positives >= 0)
