"""Where an index's tiles and their coordinates come from: a tile CSV, a folder with tiles.csv, VIGOR-style names."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from cvbench.errors import DatasetFormatError, DatasetNotFoundError
from cvbench.inference.localize import read_truth
from cvbench.inference.tiles import read_tiles


def _tile(path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)


def test_a_csv_gives_paths_relative_to_its_folder_and_positions_in_its_frame(tmp_path):
    (tmp_path / "aerial").mkdir()
    _tile(tmp_path / "aerial" / "a.png")
    _tile(tmp_path / "aerial" / "b.png")
    (tmp_path / "tiles.csv").write_text("path,x,y\naerial/a.png,10.5,-3\n\naerial/b.png,0,7\n")
    for where in (tmp_path / "tiles.csv", tmp_path):  # the file, or the folder holding it
        tiles = read_tiles(where)
        assert tiles.paths == [(tmp_path / "aerial" / name).resolve() for name in ("a.png", "b.png")]
        assert tiles.positions.kind == "xy" and tiles.positions.values.tolist() == [[10.5, -3.0], [0.0, 7.0]]
        assert tiles.described == f"coordinates from the CSV file {tmp_path / 'tiles.csv'}"


def test_vigor_names_give_latitude_and_longitude(tmp_path):
    _tile(tmp_path / "satellite_37.7749_-122.4194.png")
    _tile(tmp_path / "satellite_-33.86_151.2.png")
    tiles = read_tiles(tmp_path)
    assert [path.name for path in tiles.paths] == ["satellite_-33.86_151.2.png", "satellite_37.7749_-122.4194.png"]
    assert tiles.positions.kind == "latlon"
    assert tiles.positions.values.tolist() == [[-33.86, 151.2], [37.7749, -122.4194]]
    assert "VIGOR-style file names" in tiles.described


@pytest.mark.parametrize("rows, line, says", [
    ("a.png,91,0\n", 2, "lat '91' is out of range"),
    ("a.png,1,2\nb.png,1,\n", 3, "lon '' is not a number"),
    ("a.png,1,2\n,1,2\n", 3, "empty path cell"),
    ("a.png,1,2\nmissing.png,1,2\n", 3, "image missing.png does not exist"),
    ("a.png,1,2,3\n", 2, "4 fields where the header has 3"),  # pandas took path for an index: "image 1 does not exist"
    ("a.png,1,2\n\na.png,1,2,3\n", 4, "4 fields where the header has 3"),
])
def test_a_bad_row_names_the_file_and_line(tmp_path, rows, line, says):
    _tile(tmp_path / "a.png")
    (tmp_path / "tiles.csv").write_text("path,lat,lon\n" + rows)
    with pytest.raises(DatasetFormatError, match=rf"^{re.escape(str(tmp_path / 'tiles.csv'))}:{line}: .*{says}"):
        read_tiles(tmp_path / "tiles.csv")


def test_a_header_without_coordinates_names_what_was_expected(tmp_path):
    (tmp_path / "tiles.csv").write_text("file,lat,lon\na.png,1,2\n")
    with pytest.raises(DatasetFormatError, match=r"tiles.csv:1: the header is 'file,lat,lon'; expected path,lat,lon"):
        read_tiles(tmp_path / "tiles.csv")


def test_a_folder_of_other_names_or_no_tiles_says_what_was_expected(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="holds no tiles.csv and no tiles"):
        read_tiles(tmp_path)
    _tile(tmp_path / "tile_0001.png")
    with pytest.raises(DatasetFormatError, match=r"tile_0001.png is not named satellite_<lat>_<lon>.png"):
        read_tiles(tmp_path)


def test_truth_rows_need_no_image_file_and_keep_the_true_tile(tmp_path):
    (tmp_path / "queries.csv").write_text("path,x,y,tile\nground/q.png,1,2,aerial/t.png\n")
    truth = read_truth(tmp_path / "queries.csv")
    assert truth.paths == [(tmp_path / "ground" / "q.png").resolve()] and truth.extra == {"tile": ["aerial/t.png"]}


def test_a_file_given_for_a_folder_or_a_folder_for_a_file_is_named_as_such(tmp_path):
    """A path that exists but is of the other kind was reported as not existing."""
    from cvbench.inference import load_tile_index
    from cvbench.inference.localize import query_files

    _tile(tmp_path / "q.png")
    with pytest.raises(DatasetNotFoundError, match=r"--queries .*q\.png is a file, not a folder; expected a folder"):
        query_files(tmp_path / "q.png")
    with pytest.raises(DatasetNotFoundError, match=r"--index .*q\.png is a file, not a folder; expected a folder"):
        load_tile_index(tmp_path / "q.png")
    with pytest.raises(DatasetNotFoundError, match=r"--truth CSV .* is a folder, not a file; expected a CSV file"):
        read_truth(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"--queries .*nowhere does not exist"):
        query_files(tmp_path / "nowhere")
