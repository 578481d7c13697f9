"""The harness side of real datasets: image files, re-indexing, problem reports, layout errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cvbench.data import ArrayImages, ConcatImages, CrossViewPairs, FileImages, IndexedImages, read_image
from cvbench.data.imagecheck import check_files, check_image, drop_unreadable
from cvbench.data.layout import folder_names, require_layout, text_lines
from cvbench.data.loaders import load_image
from cvbench.data.problems import DatasetWarning, Problem, collect_problems, report_problem, report_skipped
from cvbench.errors import CvbenchError, DatasetFormatError, DatasetNotFoundError


def write_image(path: Path, size=(64, 32), mode="RGB", value=120, format=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path, format=format)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ------------------------------------------------------------------- images


def test_file_images_read_rgb_and_convert_other_modes_with_one_warning(tmp_path):
    rgb = write_image(tmp_path / "a.png")
    grey = write_image(tmp_path / "b.png", mode="L")
    rgba = write_image(tmp_path / "c.png", mode="RGBA")
    images = FileImages([rgb, grey, rgba])
    assert images[0].shape == (32, 64, 3) and images[0].dtype == np.uint8
    with pytest.warns(DatasetWarning, match=r"b\.png is in mode L"):
        assert images[1].shape == (32, 64, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert images[2].shape == (32, 64, 3)  # reported once per list: no second warning


def test_jpeg_decodes_at_a_reduced_scale_that_still_covers_the_size(tmp_path):
    path = write_image(tmp_path / "pano.jpg", size=(1664, 832), format="JPEG")
    images = FileImages([path])
    assert images.read(0).shape == (832, 1664, 3)
    assert images.read(0, (112, 616)).shape == (416, 832, 3)  # 1/2: 1/4 would leave 416 < 616 columns
    assert images.read(0, (64, 300)).shape == (208, 416, 3)  # 1/4: 1/8 would leave 208 < 300 columns
    assert images.read(0, (64, 200)).shape == (104, 208, 3)  # 1/8 covers 64x200
    assert tuple(load_image(images, 0, (112, 616)).shape) == (3, 112, 616)
    png = FileImages([write_image(tmp_path / "tile.png", size=(400, 400))])
    assert png.read(0, (100, 100)).shape == (400, 400, 3)  # only JPEG can scale while decoding


def test_sized_reads_pass_through_index_and_concat_lists(tmp_path):
    path = write_image(tmp_path / "pano.jpg", size=(800, 400), format="JPEG")
    files = FileImages([path, path])
    assert read_image(IndexedImages(files, [1]), 0, (50, 150)).shape == (100, 200, 3)
    both = ConcatImages(ArrayImages(np.zeros((1, 4, 4, 3), np.uint8)), files)
    assert read_image(both, 2, (50, 150)).shape == (100, 200, 3)
    assert both[0].shape == (4, 4, 3)


def test_missing_and_corrupt_files_name_themselves(tmp_path):
    broken = truncate(write_image(tmp_path / "broken.jpg", size=(256, 256), format="JPEG"))
    images = FileImages([tmp_path / "gone.png", broken, write_image(tmp_path / "text.png")])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(CvbenchError, match="gone.png"):
        images[0]
    with pytest.raises(CvbenchError, match="broken.jpg.*truncated"):
        images[1]
    with pytest.raises(CvbenchError, match="text.png"):
        images[2]


def test_check_image_kinds(tmp_path):
    assert check_image(write_image(tmp_path / "ok.jpg", format="JPEG")) is None
    missing = check_image(tmp_path / "nope.jpg")
    assert missing.fatal and "missing" in missing.message
    broken = check_image(truncate(write_image(tmp_path / "t.jpg", size=(256, 256), format="JPEG")))
    assert broken.fatal and "truncated" in broken.message
    grey = check_image(write_image(tmp_path / "g.png", mode="L"))
    assert not grey.fatal and "mode L" in grey.message
    checked = check_files([tmp_path / "ok.jpg", tmp_path / "nope.jpg", tmp_path / "ok.jpg"])
    assert list(checked) == [tmp_path / "ok.jpg", tmp_path / "nope.jpg"]


# ---------------------------------------------------------------- re-indexing


def pairs_with_tables(ground: list, aerial: list) -> CrossViewPairs:
    return CrossViewPairs(
        ground=FileImages(ground), aerial=FileImages(aerial),
        positives=[0, 1, 2, 3],
        semi_positives=[[1, 2], [0, -1], [3, 1], [-1, -1]],
        ground_meta=pd.DataFrame({"name": ["q0", "q1", "q2", "q3"]}),
        aerial_meta=pd.DataFrame({"name": ["t0", "t1", "t2", "t3"]}),
        also_correct=[[3, -1], [-1, -1], [1, -1], [2, 0]],
    )


def test_select_reindexes_by_hand():
    pairs = pairs_with_tables([f"q{i}.png" for i in range(4)], [f"t{i}.png" for i in range(4)])
    part = pairs.select(queries=[0, 1, 2, 3], references=[0, 2, 3])  # tile 1 goes, so query 1 goes
    assert part.ground.paths == [Path("q0.png"), Path("q2.png"), Path("q3.png")]
    assert part.aerial.paths == [Path("t0.png"), Path("t2.png"), Path("t3.png")]
    assert part.positives.tolist() == [0, 1, 2]
    assert part.semi_positives.tolist() == [[1], [2], [-1]]  # q0: [t1 gone, t2 -> 1]; q2: [t3 -> 2, t1 gone]
    assert part.also_correct.tolist() == [[2, -1], [-1, -1], [1, 0]]
    assert part.ground_meta["name"].tolist() == ["q0", "q2", "q3"]
    assert part.aerial_meta["name"].tolist() == ["t0", "t2", "t3"]


def test_select_works_on_lists_without_paths():
    images = ArrayImages(np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3))
    pairs = CrossViewPairs(images, images, [3, 2, 1, 0])
    part = pairs.select(queries=[1, 3], references=[0, 2])
    assert part.positives.tolist() == [1, 0]
    np.testing.assert_array_equal(part.ground[0], images[1])
    np.testing.assert_array_equal(part.aerial[1], images[2])


def test_drop_unreadable_leaves_out_pairs_and_warns(tmp_path):
    ground = [write_image(tmp_path / f"q{i}.jpg", format="JPEG", value=i) for i in range(4)]
    aerial = [write_image(tmp_path / f"t{i}.png", value=10 + i) for i in range(4)]
    truncate(write_image(ground[3], size=(256, 256), format="JPEG"))
    aerial[2].write_bytes(b"garbage")
    write_image(aerial[0], mode="L")  # converted, not dropped
    pairs = pairs_with_tables(ground, aerial)
    with pytest.warns(DatasetWarning, match=r"skipped 2 unreadable images of toy val"):
        kept = drop_unreadable(pairs, "toy val")
    assert kept.ground.paths == ground[:2]  # q2 lost its positive t2, q3 is truncated
    assert kept.positives.tolist() == [0, 1]
    assert kept.semi_positives.tolist() == [[1], [0]]
    with collect_problems() as found:
        drop_unreadable(pairs, "toy val")
    assert sorted(Path(p.path).name for p in found) == ["q3.jpg", "t2.png"]
    assert all(not p.fatal for p in found)  # skipped: reported, not an error any more


# ---------------------------------------------------------------- problems


def test_report_problem_raises_with_file_and_line_unless_collecting(tmp_path):
    with pytest.raises(DatasetFormatError, match=r"labels\.txt:7: expected 13 fields"):
        report_problem(tmp_path / "labels.txt", "expected 13 fields", line=7)
    with collect_problems() as found:
        report_problem("a.txt", "bad", line=1)
        report_problem("b.mat", "no key")
    assert [str(p) for p in found] == ["a.txt:1: bad", "b.mat: no key"]


def test_report_skipped_warns_once_with_the_count():
    problems = [Problem(f"img{i}.jpg", "image file is missing") for i in range(5)]
    with pytest.warns(DatasetWarning) as record:
        report_skipped("toy pairs whose image files are missing", problems)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("skipped 5 toy pairs whose image files are missing: img0.jpg: image file is missing")
    assert "and 2 more" in message and "img3.jpg" not in message
    with collect_problems() as found:
        report_skipped("toy pairs", problems)
    assert len(found) == 5 and not any(p.fatal for p in found)


# ------------------------------------------------------------------- layout


def test_require_layout_lists_everything_missing(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        require_layout("Toy", tmp_path, ["a", "b/c.txt", "d"], "ROOT/\n  a/\n  b/c.txt\n  d/", "Get it from X.")
    message = str(info.value)
    assert f"missing: {tmp_path / 'b/c.txt'}" in message and f"missing: {tmp_path / 'd'}" in message
    assert "missing: " + str(tmp_path / "a") + "\n" not in message
    assert "ROOT/\n  a/" in message and "Get it from X." in message
    with pytest.raises(DatasetNotFoundError, match="needs --data-root"):
        require_layout("Toy", None, ["a"], "ROOT/", "Get it from X.")
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        require_layout("Toy", tmp_path / "nowhere", ["a"], "ROOT/", "Get it from X.")
    assert require_layout("Toy", tmp_path, ["a"], "", "") == tmp_path


def test_folder_names_and_text_lines(tmp_path):
    (tmp_path / "x.txt").write_text("first\n\n  second  \n")
    assert folder_names(tmp_path) == {"x.txt"}
    assert folder_names(tmp_path / "missing") == set()
    assert list(text_lines(tmp_path / "x.txt")) == [(1, "first"), (3, "second")]
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DatasetFormatError, match=r"bin.txt:1: not a UTF-8 text file \(invalid start byte: byte 0xff\)"):
        list(text_lines(tmp_path / "bin.txt"))
