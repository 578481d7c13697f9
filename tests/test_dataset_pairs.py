"""The pairs plugin (bring your own city) on small CSV folders: protocols, galleries, holdout, bad rows, errors."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pytest
from conftest import smoke_run
from cvbench_plugins.datasets.pairs import Pairs
from PIL import Image

from cvbench.contract.registry import create
from cvbench.data import ArrayImages, CrossViewPairs
from cvbench.data.check import check_dataset
from cvbench.data.preview import export_pairs
from cvbench.data.problems import DatasetWarning, collect_problems
from cvbench.errors import DatasetFormatError, DatasetNotFoundError, SpecError

HEADER = ("ground", "aerial", "x", "y", "split", "city")
# Hand-made city: tile A is shared by two train queries and a val query; C by two val queries and an
# aerial-only row (line 12, which gives C its own position); D and F are aerial-only tiles.
ROWS = (
    ("g/t0.png", "a/A.png", 0, 0, "train", "north"),   # line 2
    ("g/t1.png", "a/B.png", 10, 0, "train", "north"),  # line 3
    ("g/v0.png", "a/C.png", 20, 0, "val", "north"),    # line 4
    ("g/t2.png", "a/A.png", 1, 0, "train", "north"),   # line 5
    ("", "a/D.png", 30, 0, "val", "north"),            # line 6
    ("g/s0.png", "a/E.png", 40, 5, "test", "south"),   # line 7
    ("g/v1.png", "a/C.png", 21, 0, "val", "north"),    # line 8
    ("g/v2.png", "a/A.png", 2, 0, "val", "north"),     # line 9
    ("", "a/F.png", 50, 0, "train", "north"),          # line 10
    ("g/s1.png", "a/E.png", 41, 5, "test", "south"),   # line 11
    ("", "a/C.png", 25, 0, "val", "north"),            # line 12
)


def make_pairs(root: Path, rows: Sequence[Sequence] = ROWS, header: Sequence[str] = HEADER,
               name: str = "pairs.csv") -> Path:
    """Write ``root/name`` and a tiny PNG for each ground (16x32) and aerial (16x16) path it names; returns root.

    A query and its tile share a colour derived from the tile's path, so a network can learn the match.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    (root / name).write_text("\n".join(lines) + "\n")
    ground, aerial = header.index("ground"), header.index("aerial")
    for row in rows:
        colour = np.random.default_rng(zlib.crc32(str(row[aerial]).encode())).integers(0, 256, 3, dtype=np.uint8)
        for column, size in ((ground, (16, 32)), (aerial, (16, 16))):
            if column < len(row) and row[column] and not (root / str(row[column])).exists():
                (root / str(row[column])).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.ascontiguousarray(np.broadcast_to(colour, (*size, 3)))).save(root / str(row[column]))
    return root


def holdout_rows(count: int = 10) -> list[tuple]:
    """``count`` queries on ``count // 2`` tiles (two per tile) plus one aerial-only tile, as lat/lon without split."""
    rows = [(f"g/q{i}.png", f"a/T{i // 2}.png", 48.0 + i / 1000, 11.5, "here") for i in range(count)]
    return rows + [("", "a/extra.png", 48.5, 11.6, "here")]


def names(images) -> list[str]:
    return [f"{path.parent.name}/{path.name}" for path in images.paths]


@pytest.fixture
def city(tmp_path):
    return make_pairs(tmp_path / "city")


def test_split_values_become_protocols_with_many_to_one_positives(city):
    dataset = create("dataset", "pairs", city)
    assert dataset.splits() == ["val", "test"]
    assert dataset.image_sizes() == {"ground": (224, 448), "aerial": (224, 224)}
    train = dataset.load("val", "train")
    assert names(train.ground) == ["g/t0.png", "g/t1.png", "g/t2.png"]
    assert names(train.aerial) == ["a/A.png", "a/B.png", "a/F.png"]  # F: an aerial-only train tile
    assert train.positives.tolist() == [0, 1, 0]
    assert dataset.load("test", "train") is train
    val = dataset.load("val", "val")
    assert names(val.ground) == ["g/v0.png", "g/v1.png", "g/v2.png"]
    assert names(val.aerial) == ["a/C.png", "a/D.png", "a/A.png"]
    assert val.positives.tolist() == [0, 0, 2]
    assert val.ground_meta[["x", "y"]].values.tolist() == [[20, 0], [21, 0], [2, 0]]
    assert val.ground_meta["name"].tolist() == ["g/v0.png", "g/v1.png", "g/v2.png"]
    assert val.aerial_meta["x"].tolist() == [25, 30, 2]  # C from its aerial-only row, A from its first val query
    assert val.aerial_meta["city"].tolist() == ["north"] * 3 and "lat" not in val.aerial_meta
    test = dataset.load("test", "val")
    assert names(test.aerial) == ["a/E.png"] and test.positives.tolist() == [0, 0]
    assert test.ground_meta["city"].tolist() == ["south", "south"]
    assert test.ground[1].shape == (16, 32, 3) and test.aerial[0].shape == (16, 16, 3)


def test_the_root_may_be_the_csv_file_itself_with_paths_relative_to_it(tmp_path):
    rows = [("g/a.png", "a/a.png", 1, 2, "train"), ("g/b.png", "a/b.png", 3, 4, "val")]
    folder = make_pairs(tmp_path / "data", rows, header=("ground", "aerial", "x", "y", "split"), name="mine.csv")
    as_file = Pairs(folder / "mine.csv").load("val", "val")
    assert as_file.ground.paths == [folder / "g" / "b.png"] and as_file.aerial.paths == [folder / "a" / "b.png"]
    assert as_file.ground_meta["city"].tolist() == [""]
    with pytest.raises(DatasetNotFoundError, match="has no pairs.csv"):
        Pairs(folder)
    (folder / "pairs.csv").write_text(f"ground,aerial,x,y,split\n{folder}/g/a.png,a/a.png,1,2,train\n"
                                      "g/b.png,./a/../a/b.png,3,4,val\n")
    as_folder = Pairs(folder)
    assert as_folder.load("val", "train").ground.paths == [folder / "g" / "a.png"]  # absolute as written
    assert as_folder.load("val", "val").aerial.paths == [folder / "a" / "b.png"]


def test_without_a_split_column_a_seeded_fraction_of_queries_is_held_out(tmp_path):
    folder = make_pairs(tmp_path / "nosplit", holdout_rows(), header=("ground", "aerial", "lat", "lon", "city"))

    def held(**options) -> list[str]:
        dataset = Pairs(folder, **options)
        assert dataset.splits() == ["val"]
        train, val = dataset.load("val", "train"), dataset.load("val", "val")
        assert sorted(names(train.ground) + names(val.ground)) == sorted(f"g/q{i}.png" for i in range(10))
        assert names(val.aerial)[-1] == "a/extra.png" and "a/extra.png" not in names(train.aerial)
        for pairs in (train, val):  # every query's positive is the tile its row names
            rows = {f"g/q{i}.png": f"a/T{i // 2}.png" for i in range(10)}
            assert [names(pairs.aerial)[p] for p in pairs.positives] == [rows[g] for g in names(pairs.ground)]
        assert val.ground_meta["lat"].tolist() == [48.0 + int(n[3:-4]) / 1000 for n in names(val.ground)]
        return names(val.ground)

    default = held()
    assert len(default) == 2 and held(seed=0) == default
    chosen = held(val_fraction="0.3", seed="1")
    assert len(chosen) == 3 and held(val_fraction=0.3, seed=1) == chosen
    assert held(val_fraction=0.3, seed=2) != chosen
    shared = Pairs(folder, val_fraction=0.5, seed=3)  # five of ten queries out: some tile has one query on each side
    both = set(names(shared.load("val", "train").aerial)) & set(names(shared.load("val", "val").aerial))
    assert both and all(name.startswith("a/T") for name in both)


def test_bad_cells_are_reported_with_their_csv_line(tmp_path):
    rows = [("g/0.png", "a/0.png", 48.1, 11.5, "train"),
            ("g/1.png", "", 48.1, 11.5, "train"),             # line 3: no tile
            ("g/2.png", "a/2.png", "north", 11.5, "val"),     # line 4: not a number
            ("g/3.png", "a/3.png", 48.1, 11.5, "val"),
            ("g/4.png", "a/4.png", 48.1, 11.5, ""),           # line 6: no split
            ("g/5.png", "a/5.png", 91, "", "val"),            # line 7: latitude out of range (empty lon is fine)
            ("g/6.png", "a/6.png", 48.1, 11.5, "val")]
    folder = make_pairs(tmp_path / "bad", rows, header=("ground", "aerial", "lat", "lon", "split"))
    assert Pairs(folder).splits() == ["val"]  # rows are checked on load, where `data check` collects them
    with pytest.raises(DatasetFormatError, match=r"pairs\.csv:3: empty aerial cell"):
        Pairs(folder).load("val", "train")
    with collect_problems() as found:
        val = Pairs(folder).load("val", "val")
    assert [(p.line, p.fatal) for p in found] == [(3, True), (4, True), (6, True), (7, True)]
    assert "lat 'north' is not a number" in found[1].message and "out of range" in found[3].message
    assert all(p.path == str(folder / "pairs.csv") for p in found)
    assert names(val.ground) == ["g/3.png", "g/6.png"]
    report = check_dataset(Pairs(folder), images=False)
    assert [p.line for p in report.errors] == [3, 4, 6, 7]
    (folder / "pairs.csv").write_text("ground,aerial,lat,lon,split\ng/0.png,a/0.png,1,2,train\n\n"
                                      "g/3.png,a/3.png,1,2,val,extra\n")
    with pytest.raises(DatasetFormatError, match=r"pairs\.csv:4: does not parse as CSV"):
        Pairs(folder).splits()


@pytest.mark.parametrize("header, missing", [
    (("ground", "aerial", "split"), "a location: lat,lon or x,y"),
    (("ground", "x", "y"), "aerial"),
    (("aerial", "lat", "lon"), "ground"),
    (("ground", "aerial", "lat", "x", "y"), "lon (beside lat)"),
])
def test_a_missing_column_is_named(tmp_path, header, missing):
    (tmp_path / "pairs.csv").write_text(",".join(header) + "\n" + ",".join("1" * len(header)) + "\n")
    with pytest.raises(DatasetFormatError, match=r"pairs\.csv: missing column") as error:
        Pairs(tmp_path).splits()
    assert missing in str(error.value) and "ground,aerial,lat,lon" in str(error.value)


def test_split_values_need_train_and_an_evaluation_split(tmp_path):
    make_pairs(tmp_path, [("g/a.png", "a/a.png", 1, 2, "val")], header=("ground", "aerial", "x", "y", "split"))
    with pytest.raises(DatasetFormatError, match="no 'train' row"):
        Pairs(tmp_path).splits()
    make_pairs(tmp_path, [("g/a.png", "a/a.png", 1, 2, "train")], header=("ground", "aerial", "x", "y", "split"))
    with pytest.raises(DatasetFormatError, match="only 'train' rows"):
        Pairs(tmp_path).splits()


def test_rows_with_missing_images_are_skipped_with_a_warning(city):
    (city / "g" / "v1.png").unlink()
    (city / "a" / "E.png").unlink()
    with pytest.warns(DatasetWarning, match=r"skipped 3 pairs rows of pairs\.csv whose image files are missing: "
                                            r".*pairs\.csv:7: missing image .*E\.png"):
        dataset = Pairs(city)
        val = dataset.load("val", "val")
    assert names(val.ground) == ["g/v0.png", "g/v2.png"] and val.positives.tolist() == [0, 2]
    with pytest.raises(DatasetFormatError, match=r"pairs\.csv: has no usable query row of split 'test'"):
        dataset.load("test", "val")  # every test row lost its images: an empty protocol is an error
    with collect_problems() as found:
        Pairs(city).load("test", "train")
    assert [(p.line, p.fatal) for p in found] == [(7, False), (8, False), (11, False)]


def test_a_wrong_root_shows_the_csv_format_and_how_to_make_one(tmp_path):
    for root in (None, tmp_path / "nowhere", tmp_path):
        with pytest.raises(DatasetNotFoundError) as error:
            Pairs(root)
        message = str(error.value)
        assert "ground,aerial,lat,lon,split,city" in message and "cvbench data synth --out DIR" in message
    with pytest.raises(DatasetNotFoundError, match="nowhere does not exist"):
        Pairs(tmp_path / "nowhere")


def test_bad_and_unknown_options_are_rejected(city, tmp_path):
    for options, match in (({"fraction": 0.1}, "no option fraction; it accepts: val_fraction, seed"),
                           ({"val_fraction": "1.5"}, "val_fraction='1.5'.*between 0 and 1"),
                           ({"val_fraction": "most"}, "val_fraction"),
                           ({"seed": "1.5"}, "seed='1.5'.*integer"),
                           ({"seed": -3}, "seed=-3: expected a non-negative integer")):
        with pytest.raises(SpecError, match=match):
            Pairs(city, **options)
    with pytest.raises(SpecError, match="val_fraction applies only to a CSV without a split column"):
        Pairs(city, val_fraction=0.5).splits()
    with pytest.raises(SpecError, match="offers: val, test"):
        Pairs(city).load("train", "val")


def test_a_folder_written_by_export_pairs_loads_back(tmp_path):
    rng = np.random.default_rng(0)

    def subset(queries: int, tiles: int) -> CrossViewPairs:
        positives = np.arange(queries) % tiles
        meta = pd.DataFrame({"city": ["a"] * queries, "x": rng.uniform(0, 9, queries), "y": rng.uniform(0, 9, queries)})
        return CrossViewPairs(ArrayImages(rng.integers(0, 256, (queries, 8, 16, 3), dtype=np.uint8)),
                              ArrayImages(rng.integers(0, 256, (tiles, 8, 8, 3), dtype=np.uint8)), positives,
                              ground_meta=meta)

    original = {"train": subset(6, 3), "val": subset(4, 6)}  # val tiles 4 and 5: no query points at them
    export_pairs(original, tmp_path / "export")
    dataset = Pairs(tmp_path / "export")
    assert dataset.splits() == ["val"]
    for name, pairs in original.items():
        loaded = dataset.load("val", name)
        assert loaded.num_queries == pairs.num_queries and loaded.num_references == pairs.num_references
        tiles = [int(Path(path).stem) for path in loaded.aerial.paths]
        assert [tiles[p] for p in loaded.positives] == pairs.positives.tolist()
        assert np.allclose(loaded.ground_meta["x"], pairs.ground_meta["x"])


def test_a_smoke_run_on_a_pairs_folder_finishes(tmp_path):
    rows = [(f"g/{i}.png", f"a/{i // 2}.png", i, 0, "train" if i < 12 else "val", "here") for i in range(18)]
    folder = make_pairs(tmp_path / "smoke", rows + [("", "a/spare.png", 99, 0, "val", "here")])
    record = smoke_run("pairs", folder, tmp_path / "runs")
    assert record["status"] == "finished" and record["split"] == "val"
    assert record["num_queries"] == 6 and record["num_references"] == 4
