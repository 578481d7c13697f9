"""The synthetic dataset end to end: the contract, determinism, the cache, splits and orientation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cvbench.data import ArrayImages, CrossViewDataset, CrossViewPairs
from cvbench_plugins.datasets.synthetic import Synthetic
from cvbench_plugins.datasets.synthetic.cache import cache_root
from cvbench_plugins.datasets.synthetic.materials import SCENE_CLASSES

SMALL = dict(city_size=256, train_pairs=60, val_pairs=30, num_train_cities=2, num_val_cities=1, seed=3)
SUBSET_FILES = {"ground.npy", "aerial.npy", "positives.npy", "ground.csv", "aerial.csv", "index.json"}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="module")
def small(root) -> Synthetic:
    return Synthetic(root, **SMALL)


def arrays(pairs: CrossViewPairs) -> dict[str, np.ndarray]:
    return {"ground": np.asarray(pairs.ground.array), "aerial": np.asarray(pairs.aerial.array),
            "positives": pairs.positives}


def test_subsets_follow_the_dataset_contract(small):
    assert isinstance(small, CrossViewDataset)
    for split in small.splits():
        for subset, count in (("train", 60), ("val", 30)):
            pairs = small.load(split, subset)
            assert isinstance(pairs.ground, ArrayImages) and isinstance(pairs.aerial, ArrayImages)
            assert pairs.num_queries == count and pairs.num_references == count
            assert pairs.ground[0].shape == (32, 128, 3) and pairs.ground[0].dtype == np.uint8
            assert pairs.aerial[0].shape == (64, 64, 3) and pairs.aerial[0].dtype == np.uint8
            assert list(pairs.ground_meta.columns) == ["city", "style", "x", "y", "yaw_deg", "epoch", "scene"]
            assert list(pairs.aerial_meta.columns) == ["city", "style", "x", "y", "scene"]
            assert set(pairs.ground_meta.scene) <= set(SCENE_CLASSES)
            assert (pairs.ground_meta.yaw_deg == 0).all()


def test_image_sizes_follow_the_options(root):
    pairs = Synthetic(root, **{**SMALL, "tile_size": 40, "pano_size": "16x64", "tile_metres": 80}).load(
        "cross_area", "val")
    assert pairs.ground[0].shape == (16, 64, 3) and pairs.aerial[0].shape == (40, 40, 3)


def test_the_same_options_give_the_same_bytes_fresh_and_from_the_cache(small, tmp_path):
    first = arrays(small.load("cross_area", "val"))
    fresh = arrays(Synthetic(tmp_path / "elsewhere", **SMALL).load("cross_area", "val"))
    cached = arrays(Synthetic(small.cache.folder.parent, **SMALL).load("cross_area", "val"))
    for name in first:
        assert np.array_equal(first[name], fresh[name]) and np.array_equal(first[name], cached[name])
    folder = small.cache.subset_folder("cross_area", "val")
    other = Synthetic(tmp_path / "elsewhere", **SMALL).cache.subset_folder("cross_area", "val")
    for name in SUBSET_FILES:
        assert (folder / name).read_bytes() == (other / name).read_bytes(), name


def test_another_process_with_other_thread_settings_writes_byte_identical_files(small, tmp_path):
    small.load("cross_area", "val")
    script = textwrap.dedent(f"""
        from cvbench_plugins.datasets.synthetic import Synthetic
        Synthetic({str(tmp_path)!r}, **{SMALL!r}).load("cross_area", "val")
    """)
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, **threads}, timeout=120,
                   capture_output=True)
    here = small.cache.subset_folder("cross_area", "val")
    there = Synthetic(tmp_path, **SMALL).cache.subset_folder("cross_area", "val")
    for name in SUBSET_FILES:
        assert (here / name).read_bytes() == (there / name).read_bytes(), name


def test_different_options_get_their_own_cache_and_images(small, root):
    reseeded = Synthetic(root, **{**SMALL, "seed": 4})
    assert reseeded.cache.folder != small.cache.folder
    assert not np.array_equal(np.asarray(reseeded.load("cross_area", "val").aerial.array),
                              np.asarray(small.load("cross_area", "val").aerial.array))
    # Temporal change leaves the satellite alone (the offset layout's grid tiles do not depend
    # on where the cameras stand) but alters the ground views.
    offset = {**SMALL, "layout": "offset"}
    calmer = Synthetic(root, **{**offset, "temporal_change": 0.0}).load("cross_area", "val")
    base = Synthetic(root, **offset).load("cross_area", "val")
    assert np.array_equal(np.asarray(calmer.aerial.array), np.asarray(base.aerial.array))
    assert not np.array_equal(np.asarray(calmer.ground.array), np.asarray(base.ground.array))


def test_the_cache_layout_and_its_completion_marker(small):
    small.load("cross_area", "train")
    folder = small.cache.folder
    assert (folder / "options.json").is_file()
    assert {p.name for p in (folder / "cross_area" / "train").iterdir()} == SUBSET_FILES
    assert not list(folder.rglob("*.tmp"))


def test_an_interrupted_generation_is_redone_not_read(small, tmp_path):
    dataset = Synthetic(tmp_path, **SMALL)
    folder = dataset.cache.subset_folder("cross_area", "val")
    folder.mkdir(parents=True)
    (folder / "ground.npy").write_bytes(b"half a file")          # killed mid-way: no index.json yet
    (folder / ".aerial.npy.x1.tmp").write_bytes(b"a temp file")
    assert not dataset.cache.has("cross_area", "val")
    again = arrays(dataset.load("cross_area", "val"))
    expected = arrays(small.load("cross_area", "val"))
    assert all(np.array_equal(again[name], expected[name]) for name in expected)


def test_the_cache_root_is_the_root_then_the_environment_then_the_home_folder(tmp_path, monkeypatch):
    assert cache_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv("CVBENCH_CACHE", str(tmp_path / "env"))
    assert cache_root(None) == tmp_path / "env" / "synthetic"
    monkeypatch.delenv("CVBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root(None) == tmp_path / "home" / ".cache" / "cvbench" / "synthetic"


def places(pairs: CrossViewPairs) -> set[tuple[str, int, int]]:
    """The (city, cell) each query stands in."""
    meta = pairs.ground_meta
    return set(zip(meta.city, np.floor(meta.x).astype(int), np.floor(meta.y).astype(int)))


def test_same_area_train_and_val_share_cities_but_no_camera_cell(small):
    train, val = small.load("same_area", "train"), small.load("same_area", "val")
    cross = [small.load("cross_area", subset).ground_meta.city for subset in ("train", "val")]
    every_city = {*cross[0], *cross[1]}
    assert set(train.ground_meta.city) == set(val.ground_meta.city) == every_city
    assert len(places(train)) == 60 and len(places(val)) == 30
    assert not places(train) & places(val)


def test_cross_area_train_and_val_come_from_different_cities(small):
    train, val = small.load("cross_area", "train"), small.load("cross_area", "val")
    train_cities, val_cities = set(train.ground_meta.city), set(val.ground_meta.city)
    assert len(train_cities) == 2 and len(val_cities) == 1 and not train_cities & val_cities
    assert set(train.aerial_meta.city) == train_cities and set(val.aerial_meta.city) == val_cities
    assert train.ground_meta.city.value_counts().tolist() == [30, 30]
    # Train cities each have their own style; the val city is a new city of the first train city's style.
    train_styles = dict(zip(train.ground_meta.city, train.ground_meta["style"]))
    assert len(set(train_styles.values())) == 2
    assert set(val.ground_meta["style"]) == {train_styles[train.ground_meta.city[0]]}


def test_unknown_orientation_rolls_each_panorama_by_its_recorded_yaw(small, root):
    known = small.load("cross_area", "val")
    rolled = Synthetic(root, **{**SMALL, "unknown_orientation": "true"}).load("cross_area", "val")
    assert np.array_equal(known.ground_meta[["x", "y"]].values, rolled.ground_meta[["x", "y"]].values)
    yaw = rolled.ground_meta.yaw_deg.values
    assert (yaw != 0).sum() > 20 and ((yaw >= 0) & (yaw < 360)).all()
    width = known.ground[0].shape[1]
    for i in range(known.num_queries):
        shift = round(yaw[i] / 360 * width)
        assert np.array_equal(np.roll(rolled.ground[i], shift, axis=1), known.ground[i])
    assert np.array_equal(np.asarray(known.aerial.array), np.asarray(rolled.aerial.array))


def test_the_plugin_registers_the_dataset_with_cvbench():
    import pluggy

    from cvbench.contract import hookspecs
    import cvbench_plugins.datasets.synthetic as plugin

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    registered = []
    manager.hook.register_datasets(register=lambda name, factory, summary="": registered.append(
        (name, factory, summary)))
    (name, factory, summary), = registered
    assert name == "synthetic" and factory is Synthetic and summary and "\n" not in summary
