"""The entries of every dataset's list files: repeats dropped and reported, empty lists refused, paths kept
inside the data root, and a non-UTF-8 file named by its line, once.

Each dataset is a tiny copy in its real on-disk layout (tests/*_layout.py);
the expected counts, lines and names are read off the files these tests write.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from cvact_layout import column, make_cvact
from cvbench_plugins.datasets.cvact import Cvact
from cvbench_plugins.datasets.cvusa import CVUSA
from cvbench_plugins.datasets.pairs import Pairs
from cvbench_plugins.datasets.university1652 import University1652
from cvbench_plugins.datasets.vigor import Vigor
from cvusa_layout import VAL_IDS, cvusa_line, make_cvusa
from hostile import make_pairs
from PIL import Image
from university_layout import make_university1652
from vigor_layout import CITIES, LABEL_STEMS, make_vigor

from cvbench.data import load_subset
from cvbench.data.problems import DatasetWarning
from cvbench.errors import DatasetFormatError, SpecError

WIDE = {"COLUMNS": "1000"}  # rich wraps at the terminal width; long tmp paths would be split


def append_line(path: Path, number: int) -> int:
    """Append a copy of line ``number`` of ``path``; returns the line number of the copy."""
    lines = path.read_text().splitlines()
    lines.append(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def dataset_warnings(load) -> list[str]:
    """The DatasetWarning messages that ``load()`` gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load()
    return [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


def check(dataset: str, root: Path, *extra: str):
    return cli("data", "check", "--dataset", dataset, "--data-root", str(root), "--no-images", "--quiet", *extra,
               env=WIDE)


# ----------------------------------------------------------------- duplicates


def test_vigor_repeated_label_and_tile_lines_are_dropped_naming_both_lines(tmp_path):
    root = make_vigor(tmp_path / "vigor")  # 5 tiles and 4 panoramas a city
    labels = root / "splits" / "NewYork" / "pano_label_balanced.txt"
    tiles = root / "splits" / "NewYork" / "satellite_list.txt"
    assert append_line(labels, 2) == 5 and append_line(tiles, 1) == 6

    found = dataset_warnings(lambda: Vigor(root).load("cross_area", "train"))
    assert any(f"{labels}:5: repeats line 2 (panorama " in message and "the first occurrence of each is kept" in message
               for message in found), found
    assert any(f"{tiles}:6: repeats line 1 (satellite_" in message for message in found), found
    train = _quiet(lambda: Vigor(root).load("cross_area", "train"))
    assert train.num_queries == 8 and train.num_references == 10  # New York + Seattle, each once
    assert len(set(train.ground.paths)) == 8 and len(set(train.aerial.paths)) == 10
    assert train.positives.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]  # panorama j's positive is its city's tile j

    result = check("vigor", root)
    assert result.returncode == 0, result.stdout
    assert f"{labels}:5: repeats line 2" in result.stdout and f"{tiles}:6: repeats line 1" in result.stdout
    assert "0 errors, 2 warnings" in result.stdout  # each file's repeat once, though three protocols read it


def _quiet(load):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        return load()


def test_cvusa_repeated_lines_are_dropped_naming_both_lines(tmp_path):
    root = make_cvusa(tmp_path / "cvusa")
    path = root / "splits" / "val-19zl.csv"
    assert append_line(path, 2) == len(VAL_IDS) + 1
    with pytest.warns(DatasetWarning, match=rf"{path}:{len(VAL_IDS) + 1}: repeats line 2 \(panorama streetview/"
                                            r"panos/0000102\.jpg\)"):
        val = CVUSA(root).load("val", "val")
    assert val.num_queries == val.num_references == len(VAL_IDS)
    # another panorama on a tile already listed would make that tile a second gallery entry
    lines = [cvusa_line(i) for i in VAL_IDS] + ["bingmap/19/0000103.jpg,streetview/panos/0000001.jpg,x"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(DatasetWarning, match=rf"{path}:{len(VAL_IDS) + 1}: repeats line 3 \(tile bingmap/19/"
                                            r"0000103\.jpg\)"):
        assert CVUSA(root).load("val", "val").num_references == len(VAL_IDS)


def test_pairs_repeated_rows_are_dropped_naming_both_lines(tmp_path):
    root = make_pairs(tmp_path / "pairs")  # val: g/4.jpg and g/5.jpg (lines 6, 7), aerial-only a/extra.png (line 8)
    csv = root / "pairs.csv"
    assert append_line(csv, 7) == 9 and append_line(csv, 8) == 10
    found = dataset_warnings(lambda: Pairs(root).load("val", "val"))
    assert any(f"{csv}:9: repeats line 7 (ground {root / 'g' / '5.jpg'})" in m for m in found), found
    assert any(f"{csv}:10: repeats line 8 (aerial-only tile" in m for m in found), found
    val = _quiet(lambda: Pairs(root).load("val", "val"))
    assert [p.name for p in val.ground.paths] == ["4.jpg", "5.jpg"]
    assert [p.name for p in val.aerial.paths] == ["4.png", "5.png", "extra.png"]


def test_cvact_repeated_indices_are_dropped_naming_both_entries(tmp_path):
    root = make_cvact(tmp_path / "cvact", train=[1, 2, 3, 2, 4, 5, 6])
    with pytest.warns(DatasetWarning, match=r"ACT_data\.mat: 'trainSet\.trainInd' entry 4 repeats "
                                            r"'trainSet\.trainInd' entry 2 \(panoId pano001\)"):
        train = Cvact(root).load("val", "train")
    assert train.ground_meta["name"].tolist() == [f"pano{i:03d}" for i in range(6)]


# ----------------------------------------------------------------- empty lists


def empty_vigor(root: Path) -> Path:
    for city in CITIES:
        for stem in LABEL_STEMS:
            (root / "splits" / city / f"{stem}.txt").write_text("")
    return root / "splits" / "NewYork" / "pano_label_balanced.txt"  # cross_area train reads New York first


def empty_cvusa(root: Path) -> Path:
    path = root / "splits" / "val-19zl.csv"
    path.write_text("\n")
    return path


EMPTY = {  # dataset: (make, empty a file and return it, split, subset that reads it, message)
    "vigor": (make_vigor, empty_vigor, "cross_area", "train", "lists nothing; expected one line per panorama"),
    "cvusa": (make_cvusa, empty_cvusa, "val", "val", "lists nothing; expected one pair a line"),
}


@pytest.mark.parametrize("name", list(EMPTY))
def test_empty_split_files_are_errors_naming_the_file(tmp_path, name):
    make, empty, split, subset, message = EMPTY[name]
    root = make(tmp_path / name)
    path = empty(root)
    with pytest.raises(DatasetFormatError, match=f"^{path}: {message}"):
        load_subset(Vigor(root) if name == "vigor" else CVUSA(root), split, subset)
    result = check(name, root)
    assert result.returncode == 1 and f"{path}: {message}" in result.stdout, result.stdout


def test_an_empty_vigor_tile_list_is_an_error_naming_it(tmp_path):
    root = make_vigor(tmp_path / "vigor")
    (root / "splits" / "Chicago" / "satellite_list.txt").write_text("")
    with pytest.raises(DatasetFormatError, match=r"Chicago/satellite_list\.txt: lists nothing; expected one "):
        Vigor(root).load("cross_area", "val")


def test_a_pairs_split_without_query_rows_is_an_error_naming_the_csv(tmp_path):
    root = make_pairs(tmp_path / "pairs")
    csv = root / "pairs.csv"
    csv.write_text("\n".join(line for line in csv.read_text().splitlines() if ",val," not in line or
                             line.startswith(",")) + "\n")  # val keeps only its aerial-only tile
    with pytest.raises(DatasetFormatError, match=rf"^{csv}: has no usable query row of split 'val'"):
        Pairs(root).load("val", "val")


def test_an_empty_cvact_index_list_is_an_error_naming_the_key(tmp_path):
    root = make_cvact(tmp_path / "cvact", mat={"valSet": {"valInd": column([])}})
    with pytest.raises(DatasetFormatError, match=r"ACT_data\.mat: 'valSet\.valInd' lists no panorama"):
        Cvact(root).load("val", "val")


def test_an_empty_university_query_folder_is_an_error_naming_it(tmp_path):
    root = make_university1652(tmp_path)
    shutil.rmtree(root / "test" / "query_drone")
    (root / "test" / "query_drone").mkdir()
    with pytest.raises(DatasetFormatError, match=r"test/query_drone: holds no building folder with images"):
        University1652(root).load("drone2sat", "val")


def test_a_subset_without_queries_from_any_dataset_is_an_error_before_use():
    """A third-party dataset that names no file still gets a one-line error naming it, split and subset."""
    from toy_dataset import Toy

    with pytest.raises(DatasetFormatError, match=r"^the toy dataset: split 'toy', subset 'val' has no queries"):
        load_subset(Toy(size=0), "toy", "val")


def test_a_run_on_an_empty_val_file_stops_naming_it_before_any_run_folder(tmp_path):
    root = make_cvusa(tmp_path / "cvusa")
    path = empty_cvusa(root)
    runs = tmp_path / "runs"
    result = cli("run", "--preset", "smoke", "--dataset", "cvusa", "--data-root", str(root), "--runs-dir", str(runs),
                 "--quiet", env=WIDE)
    assert result.returncode == 2, result.stderr
    assert f"error: {path}: lists nothing" in result.stderr and "Traceback" not in result.stderr
    assert not runs.exists() or not any(runs.iterdir())


# ----------------------------------------------------------------- paths outside the root


def outside_image(tmp_path: Path, name: str, size: tuple[int, int]) -> Path:
    path = tmp_path / "elsewhere" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 120, np.uint8)).save(path)
    return path


def test_pairs_rows_outside_the_folder_are_refused_unless_allowed(tmp_path):
    root = make_pairs(tmp_path / "pairs")
    ground = outside_image(tmp_path, "g.jpg", (16, 32))
    csv = root / "pairs.csv"
    lines = csv.read_text().splitlines()
    lines[5] = lines[5].replace("g/4.jpg", "../elsewhere/g.jpg")  # line 6
    lines[6] = lines[6].replace("a/5.png", "/etc/passwd")  # line 7: absolute, outside
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"^{csv}:6: '\.\./elsewhere/g\.jpg' points outside the data root "
                                                 r".*allow_outside_root=true"):
        Pairs(root).load("val", "val")
    result = check("pairs", root)
    assert result.returncode == 1 and f"{csv}:7: '/etc/passwd' points outside" in result.stdout

    lines[6] = lines[6].replace("/etc/passwd", str(root / "a" / "5.png"))  # absolute, but inside: fine
    csv.write_text("\n".join(lines) + "\n")
    val = Pairs(root, allow_outside_root=True).load("val", "val")
    assert val.ground.paths[0] == ground
    with pytest.raises(SpecError, match="allow_outside_root must be true or false"):
        Pairs(root, allow_outside_root="maybe")


def test_cvusa_lines_outside_the_root_are_refused_unless_allowed(tmp_path):
    root = make_cvusa(tmp_path / "cvusa")
    tile = outside_image(tmp_path, "t.jpg", (16, 16))
    path = root / "splits" / "val-19zl.csv"
    lines = path.read_text().splitlines()
    lines[1] = "../../../etc/passwd,streetview/panos/0000102.jpg,x"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"^{path}:2: '\.\./\.\./\.\./etc/passwd' points outside the data "
                                                 "root"):
        CVUSA(root).load("val", "val")
    lines[1] = f"{tile},streetview/panos/0000102.jpg,x"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"^{path}:2: '{tile}' points outside"):
        CVUSA(root).load("val", "val")
    assert CVUSA(root, allow_outside_root=True).load("val", "val").aerial.paths[1] == tile


def test_cvact_pano_ids_that_are_paths_are_refused(tmp_path):
    ids = [f"pano{i:03d}" for i in range(12)]
    ids[7] = "../../../x"
    root = make_cvact(tmp_path / "cvact", ids=[i.ljust(10) for i in ids])
    with pytest.raises(DatasetFormatError, match=r"ACT_data\.mat: panoIds entry 8 is '\.\./\.\./\.\./x', not a "
                                                 "panorama id"):
        Cvact(root).load("val", "val")


# ----------------------------------------------------------------- non-UTF-8 files


def test_a_non_utf8_label_file_is_named_by_line_once(tmp_path):
    root = make_vigor(tmp_path / "vigor")
    labels = root / "splits" / "NewYork" / "pano_label_balanced.txt"
    lines = labels.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"-New", b"-N\xe9w", 1)  # line 3, as latin-1 writes "é"
    labels.write_bytes(b"\r\n".join(lines))
    message = f"{labels}:3: not a UTF-8 text file"
    with pytest.raises(DatasetFormatError, match=f"^{message}"):
        Vigor(root).load("cross_area", "train")
    result = check("vigor", root)
    assert result.returncode == 1
    assert result.stdout.count(message) == 1, result.stdout  # cross_area and cross_area_swapped both read it
    assert "cross_area/train, cross_area_swapped/val" in result.stdout


def test_a_non_utf8_pairs_csv_is_named_by_line(tmp_path):
    root = make_pairs(tmp_path / "pairs")
    csv = root / "pairs.csv"
    csv.write_bytes(csv.read_bytes().replace(b"munich", b"m\xfcnchen", 3))  # lines 2-4; the first is line 2
    with pytest.raises(DatasetFormatError, match=rf"^{csv}:2: not a UTF-8 text file"):
        Pairs(root).splits()
