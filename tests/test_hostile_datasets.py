"""Hostile files in every real-dataset layout: each parser either loads them as documented or names the culprit.

Label and split files (VIGOR's split lists and 13-field label lines, CVUSA's
*-19zl.csv, a pairs.csv, CVACT's ACT_data.mat) get malformed, empty, huge
and non-UTF-8 content; image files get truncated, garbage and
decompression-bomb content. See tests/hostile.py for what counts as a pass.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from cvact_layout import make_cvact
from cvbench_plugins.datasets.cvact import Cvact
from cvbench_plugins.datasets.cvusa import CVUSA
from cvbench_plugins.datasets.pairs import Pairs
from cvbench_plugins.datasets.vigor import Vigor
from cvusa_layout import make_cvusa
from hostile import (
    FAST,
    FEW,
    PAIRS_HEADER,
    UNICODE_SPACES,
    assert_names,
    counts,
    hostile_text,
    line_count,
    load_everything,
    loads_or_names,
    make_pairs,
    tolerated_text,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.utils.data import DataLoader
from vigor_layout import CITIES, make_vigor, panorama_name, tile_name

import cvbench.cli.stages
from cvbench.cli import main
from cvbench.data import FileImages
from cvbench.data.check import check_dataset
from cvbench.data.layout import text_lines
from cvbench.data.loaders import Reader, Views, load_image
from cvbench.data.problems import DatasetWarning
from cvbench.errors import CvbenchError, DatasetFormatError
from cvbench.runs.subsets import load_data
from cvbench.spec import RunSpec

VIGOR_FILES = ["satellite_list", "pano_label_balanced", "same_area_balanced_train", "same_area_balanced_test"]


@pytest.fixture(scope="module")
def vigor_root(tmp_path_factory):
    return make_vigor(tmp_path_factory.mktemp("vigor"))


@pytest.fixture(scope="module")
def cvusa_root(tmp_path_factory):
    return make_cvusa(tmp_path_factory.mktemp("cvusa"))


@pytest.fixture(scope="module")
def cvact_root(tmp_path_factory):
    return make_cvact(tmp_path_factory.mktemp("cvact"))


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"))


class Replaced:
    """``path`` holding other bytes inside the ``with``; its own again afterwards."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data = path, data

    def __enter__(self) -> Path:
        self.original = self.path.read_bytes()
        self.path.write_bytes(self.data)
        return self.path

    def __exit__(self, *exc) -> None:
        self.path.write_bytes(self.original)


def valid_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# ----------------------------------------------------------------- label and split files


@FAST
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                         st.lists(st.sampled_from(["a b", "", " ", "\ufeff", "é", *UNICODE_SPACES]), max_size=12)
                         .map(lambda parts: "\n".join(parts).encode())))
def test_text_lines_gives_numbered_lines_of_the_file_or_names_it(tmp_path, content):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    try:
        lines = list(text_lines(path))
    except DatasetFormatError as error:
        assert re.match(rf"{re.escape(str(path))}:\d+: not a UTF-8 text file", str(error)), str(error)
        assert_names(error, path)  # the line is one of the file's
        return
    assert all(1 <= number <= line_count(path) and text == text.strip() and text for number, text in lines)
    assert [number for number, _ in lines] == sorted({number for number, _ in lines})


@FAST
@given(data=st.data(), city=st.sampled_from(CITIES), stem=st.sampled_from(VIGOR_FILES))
def test_vigor_split_and_label_files(vigor_root, data, city, stem):
    path = vigor_root / "splits" / city / f"{stem}.txt"
    content = data.draw(hostile_text(valid_lines(path), " "))
    with Replaced(path, content):
        loads_or_names(lambda: Vigor(vigor_root), path)


@FAST
@given(data=st.data(), name=st.sampled_from(["train-19zl.csv", "val-19zl.csv"]))
def test_cvusa_split_files(cvusa_root, data, name):
    path = cvusa_root / "splits" / name
    content = data.draw(hostile_text(valid_lines(path), ","))
    with Replaced(path, content):
        loads_or_names(lambda: CVUSA(cvusa_root), path)


@FAST
@given(data=st.data())
def test_pairs_csv(pairs_root, data):
    path = pairs_root / "pairs.csv"
    lines = valid_lines(path)
    content = data.draw(hostile_text(lines[1:], ",", header=lines[0]))
    with Replaced(path, content):
        loads_or_names(lambda: Pairs(pairs_root), path)


@FEW
@given(data=st.data())
def test_cvact_mat_file_bytes(cvact_root, data):
    """Random bytes, the real file cut short, or the real file with a few bytes changed."""
    path = cvact_root / "ACT_data.mat"
    good = path.read_bytes()
    kind = data.draw(st.sampled_from(["random", "cut", "flipped"]))
    if kind == "random":
        content = data.draw(st.binary(max_size=400))
    elif kind == "cut":
        content = good[: data.draw(st.integers(0, len(good) - 1))]
    else:
        content = bytearray(good)
        for at, value in data.draw(st.lists(st.tuples(st.integers(128, len(good) - 1), st.integers(0, 255)),
                                            min_size=1, max_size=6)):
            content[at] = value
        content = bytes(content)
    with Replaced(path, content):
        loads_or_names(lambda: Cvact(cvact_root), path)


def test_cvact_mat_file_that_crashes_scipy_is_named(cvact_root):
    """A real matrix flagged complex, followed by another variable, kills scipy's reader (a segmentation fault)."""
    path = cvact_root / "ACT_data.mat"
    good = path.read_bytes()
    flags = good.index(b"utm") - 28  # the array-flags sub-element of utm: class double (6), flags byte after it
    assert good[flags: flags + 4] == b"\x06\x00\x00\x00", good[flags - 16: flags + 40]
    content = bytearray(good)
    content[flags + 1] = 0x08  # complex
    with Replaced(path, bytes(content)):
        with pytest.raises(CvbenchError) as error:
            Cvact(cvact_root).load("val", "train")
    assert_names(error.value, path)


def numbers() -> st.SearchStrategy:
    """Arrays MATLAB could hold where ACT_data.mat has numbers: any shape, NaN, inf, huge, negative, text."""
    floats = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
                        elements=st.floats(allow_nan=True, allow_infinity=True))
    small = hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-20, 20))
    return st.one_of(floats, small, st.text(max_size=8), st.just(np.zeros((0, 0))),
                     st.lists(st.text(max_size=5), max_size=3).map(lambda x: np.array(x, dtype=object)),
                     st.just({"wrong": np.ones(3)}), st.just(np.array([1 + 2j, 3j])), st.just(np.array([True])))


@FEW
@given(data=st.data(), key=st.sampled_from(["panoIds", "utm", "trainSet", "valSet", "valSetAll"]))
def test_cvact_mat_file_contents(cvact_root, data, key):
    """A valid .mat whose variable ``key`` holds anything: wrong shapes, NaN/inf/huge values, text, structs."""
    path = cvact_root / "ACT_data.mat"
    variables = scipy.io.loadmat(path)
    variables = {k: v for k, v in variables.items() if not k.startswith("__")}
    value = data.draw(numbers())
    if key in ("trainSet", "valSet", "valSetAll"):
        field = "trainInd" if key == "trainSet" else "valInd"
        value = data.draw(st.sampled_from([{field: value}, value]))
    if key == "panoIds":
        value = data.draw(st.one_of(st.just(value), st.lists(st.sampled_from(["pano000", "", "é", "a/b", "x" * 300]),
                                                            min_size=1, max_size=12).map(np.array)))
    variables[key] = value
    buffer = io.BytesIO()
    try:
        scipy.io.savemat(buffer, variables)
    except Exception:  # noqa: BLE001 - some values cannot be saved at all; nothing to test then
        return
    with Replaced(path, buffer.getvalue()):
        loads_or_names(lambda: Cvact(cvact_root), path)


@FAST
@given(data=st.data(), layout=st.sampled_from(["vigor", "cvusa", "pairs"]))
def test_repeated_lines_load_like_the_file_without_them_and_each_is_named(vigor_root, cvusa_root, pairs_root, data,
                                                                         layout):
    """A repeated label line, split-file line or CSV row, anywhere in the file: the first occurrence counts."""
    path, make, header = {
        "vigor": (vigor_root / "splits" / "NewYork" / "pano_label_balanced.txt", lambda: Vigor(vigor_root), 0),
        "cvusa": (cvusa_root / "splits" / "val-19zl.csv", lambda: CVUSA(cvusa_root), 0),
        "pairs": (pairs_root / "pairs.csv", lambda: Pairs(pairs_root), 1),
    }[layout]
    top, body = valid_lines(path)[:header], valid_lines(path)[header:]
    lines = list(body)
    for _ in range(data.draw(st.integers(1, 4))):
        lines.insert(data.draw(st.integers(0, len(lines))), data.draw(st.sampled_from(body)))
    with Replaced(path, "\n".join(top + list(dict.fromkeys(lines))).encode()):
        expected = counts(loads_or_names(make, path))
    with Replaced(path, "\n".join(top + lines).encode()):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = counts(load_everything(make()))
        report = check_dataset(make(), images=False)
    assert loaded == expected
    assert any("repeats line" in str(w.message) and "first occurrence" in str(w.message) for w in caught)
    repeats = {header + i + 1 for i, line in enumerate(lines) if line in lines[:i]}
    assert {p.line for p in report.warnings if p.path == str(path) and "repeats line" in p.message} == repeats
    assert not report.errors


# ----------------------------------------------------------------- documented tolerances


@FAST
@given(data=st.data())
def test_vigor_reads_bom_crlf_blank_lines_and_any_spacing_like_the_clean_files(vigor_root, data):
    clean = counts(loads_or_names(lambda: Vigor(vigor_root), vigor_root))
    city = data.draw(st.sampled_from(CITIES))
    paths = [vigor_root / "splits" / city / f"{stem}.txt" for stem in VIGOR_FILES]
    contents = [data.draw(tolerated_text(valid_lines(path), " ")) for path in paths]
    with Replaced(paths[0], contents[0]), Replaced(paths[1], contents[1]), Replaced(paths[2], contents[2]), \
            Replaced(paths[3], contents[3]):
        assert counts(loads_or_names(lambda: Vigor(vigor_root), vigor_root)) == clean


@FAST
@given(data=st.data())
def test_cvusa_and_pairs_read_bom_crlf_and_blank_lines_like_the_clean_files(cvusa_root, pairs_root, data):
    for path, make, header in ((cvusa_root / "splits" / "val-19zl.csv", lambda: CVUSA(cvusa_root), None),
                               (pairs_root / "pairs.csv", lambda: Pairs(pairs_root), PAIRS_HEADER)):
        clean = counts(loads_or_names(make, path))
        lines = valid_lines(path)[1 if header else 0:]
        with Replaced(path, data.draw(tolerated_text(lines, ",", header=header))):
            assert counts(loads_or_names(make, path)) == clean


@FAST
@given(data=st.data(), layout=st.sampled_from(["vigor", "cvusa"]))
def test_a_bad_line_is_named_by_its_line_in_the_file(vigor_root, cvusa_root, data, layout):
    """Unicode spaces that ``str.splitlines`` takes for line breaks (form feed, U+2028, ...) must not shift it."""
    if layout == "vigor":
        path, make, sep = vigor_root / "splits" / "Seattle" / "pano_label_balanced.txt", lambda: Vigor(vigor_root), " "
    else:
        path, make, sep = cvusa_root / "splits" / "train-19zl.csv", lambda: CVUSA(cvusa_root), ","
    lines = [line + "".join(data.draw(st.lists(st.sampled_from(UNICODE_SPACES), max_size=2)))
             for line in valid_lines(path)]
    at = data.draw(st.integers(0, len(lines)))
    lines.insert(at, sep.join(valid_lines(path)[0].split(sep)[:2]))  # too few fields
    with Replaced(path, "\n".join(lines).encode()):
        with pytest.raises(CvbenchError) as error:
            load_everything_quietly(make())
    assert f"{path}:{at + 1}: expected" in str(error.value)


@FAST
@given(data=st.data(), offset=st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "-Infinity", "1e99999"]))
def test_a_vigor_offset_that_is_not_finite_is_named(vigor_root, data, offset):
    path = vigor_root / "splits" / "NewYork" / "pano_label_balanced.txt"
    lines = valid_lines(path)
    at = data.draw(st.integers(0, len(lines) - 1))
    fields = lines[at].split()
    fields[data.draw(st.sampled_from([2, 3, 5, 6, 8, 9, 11, 12]))] = offset
    lines[at] = " ".join(fields)
    with Replaced(path, "\n".join(lines).encode()):
        with pytest.raises(CvbenchError) as error:
            load_everything_quietly(Vigor(vigor_root))
    assert f"{path}:{at + 1}: offset {offset!r} is not a finite number" in str(error.value)


@FAST
@given(data=st.data())
def test_a_pairs_row_with_more_fields_than_the_header_is_named(pairs_root, data):
    """pandas would take the first column for an index when the first row has one field too many, shifting every cell."""
    path = pairs_root / "pairs.csv"
    header, *rows = valid_lines(path)
    longer = data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))
    rows = [row + "," + data.draw(st.sampled_from(["", "x", "train", "1.5"])) if i in longer else row
            for i, row in enumerate(rows)]
    with Replaced(path, "\n".join([header, *rows]).encode()):
        with pytest.raises(CvbenchError) as error:
            load_everything_quietly(Pairs(pairs_root))
    assert f"{path}:{min(longer) + 2}: does not parse as CSV" in str(error.value)


def load_everything_quietly(dataset) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        for split in dataset.splits():
            for subset in ("train", "val"):
                dataset.load(split, subset)


# ----------------------------------------------------------------- corrupt images


def png_bomb() -> bytes:
    """A PNG header claiming 100000 x 100000 pixels (Pillow refuses it as a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: data[:16] + bytes(range(256)) * 4,
    "empty": lambda data: b"",
    "bomb": lambda data: png_bomb(),
}


def corrupt_image_layout(layout: str, root: Path) -> tuple[str, Path, str]:
    """(dataset, a val image file of it, view) for the layout written under ``root``."""
    if layout == "vigor_panorama":
        make_vigor(root)
        return "vigor", root / "Chicago" / "panorama" / panorama_name("Chicago", 1), "ground"
    if layout == "vigor_tile":
        make_vigor(root)
        return "vigor", root / "Chicago" / "satellite" / tile_name("Chicago", 1), "aerial"
    if layout == "cvact":
        make_cvact(root)
        return "cvact", root / "ANU_data_small" / "satview_polish" / "pano007_satView_polish.jpg", "aerial"
    if layout == "cvusa":
        make_cvusa(root)
        return "cvusa", root / "streetview" / "panos" / "0000102.jpg", "ground"
    make_pairs(root)
    return "pairs", root / "g" / "5.jpg", "ground"


OPEN = {"vigor": Vigor, "cvact": Cvact, "cvusa": CVUSA, "pairs": Pairs}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("layout", ["vigor_panorama", "vigor_tile", "cvact", "cvusa", "pairs"])
def test_a_corrupt_image_fails_naming_it_or_is_skipped_and_reported(tmp_path, layout, corruption):
    """``--bad-images fail``: reading it raises a cvbench error naming the file; ``skip``: its pair goes, reported."""
    name, broken, view = corrupt_image_layout(layout, tmp_path / layout)
    dataset = OPEN[name](tmp_path / layout)
    split = dataset.splits()[0]
    broken.write_bytes(CORRUPTIONS[corruption](broken.read_bytes()))

    data = load_data(RunSpec(dataset=name, bad_images="fail"), dataset, split)
    images = getattr(data.val, view)
    assert broken in images.paths
    with pytest.raises(CvbenchError) as error:
        for index in range(len(images)):
            load_image(images, index, (16, 16))
    assert str(broken) in str(error.value) and "Traceback" not in str(error.value)

    with pytest.warns(DatasetWarning, match="unreadable images") as record:
        kept = load_data(RunSpec(dataset=name, bad_images="skip"), OPEN[name](tmp_path / layout), split)
    assert any(str(broken) in str(warning.message) for warning in record)
    assert broken not in kept.val.ground.paths and broken not in kept.val.aerial.paths
    assert kept.val.num_queries == data.val.num_queries - 1  # the one query that needs it
    for pairs in (kept.train, kept.val):
        for images in (pairs.ground, pairs.aerial):
            for index in range(len(images)):
                load_image(images, index, (16, 16))  # everything left reads


def test_a_corrupt_image_read_in_a_worker_process_is_named_without_the_workers_traceback(tmp_path, monkeypatch,
                                                                                         capsys):
    """torch re-raises a DataLoader worker's error with the worker's traceback in its message; the CLI drops it."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    loader = DataLoader(Views(FileImages([broken]), Reader((16, 16))), num_workers=1)
    with pytest.raises(CvbenchError) as error:
        next(iter(loader))
    assert str(broken) in str(error.value)

    def fail(*args, **kwargs):
        raise error.value

    monkeypatch.setattr(cvbench.cli.stages, "run", fail)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        main(["run", "--workers", "1"])
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert "Traceback" not in err and "error: cannot read image" in err and broken.name in err, err


def test_cvact_utm_beyond_any_utm_zone_is_named(tmp_path):
    """Found by test_cvact_mat_file_bytes: a flipped byte made a coordinate 1e300 and scipy's KD-tree overflowed."""
    root = make_cvact(tmp_path / "cvact")
    contents = {key: value for key, value in scipy.io.loadmat(root / "ACT_data.mat").items() if not key.startswith("__")}
    contents["utm"] = contents["utm"].astype(float)
    contents["utm"][1, 0] = 1e300
    scipy.io.savemat(root / "ACT_data.mat", contents)
    with pytest.raises(CvbenchError, match=r"ACT_data.mat.*'utm' row 2 is \[1e\+300"):
        Cvact(root).load("test", "val")
