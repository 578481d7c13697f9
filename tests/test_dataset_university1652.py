"""The university1652 plugin on a University-Release folder written in its real layout, with hand-worked truth."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import cli
from university_layout import DISTRACTORS, DRONE_VIEWS, QUERIED, STREET_VIEWS, TRAIN, make_university1652

import cvbench
from cvbench import Conventions, Retrieval
from cvbench.data.problems import DatasetWarning
from cvbench.errors import DatasetFormatError, DatasetNotFoundError


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_university1652(tmp_path_factory.mktemp("university"))


@pytest.fixture
def dataset(release, registry):
    return cvbench.create("dataset", "university1652", release)


def buildings(meta) -> list[str]:
    return meta["building"].tolist()


def test_training_pairs_each_view_with_its_buildings_satellite_image(dataset):
    for split, views in (("drone2sat", DRONE_VIEWS), ("sat2drone", DRONE_VIEWS), ("street2sat", STREET_VIEWS)):
        train = dataset.load(split, "train")
        assert train.query_view == "ground" and train.num_queries == len(TRAIN) * views
        assert buildings(train.aerial_meta) == list(TRAIN)
        assert [buildings(train.aerial_meta)[p] for p in train.positives] == buildings(train.ground_meta)


def test_drone_to_satellite_queries_the_whole_gallery_distractors_included(dataset):
    val = dataset.load("drone2sat", "val")
    assert (val.num_queries, val.num_references) == (len(QUERIED) * DRONE_VIEWS, len(QUERIED + DISTRACTORS))
    assert buildings(val.aerial_meta) == list(QUERIED + DISTRACTORS) and val.also_correct is None
    # hand-worked: the 9 views of 0101 point at gallery image 0, of 0102 at 1, of 0103 at 2
    assert val.positives.tolist() == [0] * 9 + [1] * 9 + [2] * 9
    assert str(val.ground.paths[9]).endswith("test/query_drone/0102/image-01.jpeg")


def test_satellite_to_drone_has_every_view_of_the_building_correct(dataset):
    val = dataset.load("sat2drone", "val")
    assert val.query_view == "aerial" and val.gallery_view == "ground"
    assert (val.num_queries, val.num_references) == (len(QUERIED), len(QUERIED + DISTRACTORS) * DRONE_VIEWS)
    assert buildings(val.aerial_meta) == list(QUERIED)
    for query, building in enumerate(QUERIED):
        correct = {int(val.positives[query]), *[int(i) for i in val.also_correct[query] if i >= 0]}
        first = (QUERIED + DISTRACTORS).index(building) * DRONE_VIEWS
        assert correct == set(range(first, first + DRONE_VIEWS))  # hand-worked: the building's block of 9


def test_street_to_satellite(dataset):
    val = dataset.load("street2sat", "val")
    assert val.num_queries == len(QUERIED) * STREET_VIEWS and val.num_references == len(QUERIED + DISTRACTORS)
    assert val.positives.tolist() == [0, 0, 1, 1, 2, 2]


def test_recall_and_ap_on_known_embeddings_match_brute_force(dataset):
    """Embeddings: each building a direction, each view that direction plus noise; the metrics see the protocol."""
    from sklearn.metrics import average_precision_score

    val = dataset.load("sat2drone", "val")
    rng = np.random.default_rng(0)
    direction = {b: rng.standard_normal(16) for b in QUERIED + DISTRACTORS}
    query = np.stack([direction[b] + 0.9 * rng.standard_normal(16) for b in buildings(val.query_meta)])
    gallery = np.stack([direction[b] + 0.9 * rng.standard_normal(16) for b in buildings(val.gallery_meta)])
    retrieval = Retrieval(query=query, reference=gallery, positives=val.positives, also_correct=val.also_correct,
                          query_view=val.query_view, conventions=Conventions())
    recall = cvbench.create("metric", "recall")(retrieval)
    ap = cvbench.create("metric", "ap")(retrieval)["AP"]
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = q @ g.T
    correct = np.array([[b == c for c in buildings(val.gallery_meta)] for b in buildings(val.query_meta)])
    order = np.argsort(-scores, axis=1)
    first_hit = np.array([np.flatnonzero(correct[i, order[i]])[0] for i in range(len(query))])
    for k in (1, 5, 10):
        assert recall[f"R@{k}"] == pytest.approx(100 * np.mean(first_hit < k))
    assert ap == pytest.approx(100 * np.mean([average_precision_score(correct[i], scores[i])
                                              for i in range(len(query))]))
    assert 0 < ap < 100 and recall["R@1"] != ap  # the case is not trivial


def test_a_smoke_run_on_drone_to_satellite_and_satellite_to_drone(release, tmp_path):
    for split in ("drone2sat", "sat2drone"):
        result = cli("run", "--preset", "smoke", "--dataset", "university1652", "--data-root", str(release),
                     "--split", split, "--runs-dir", str(tmp_path / split), "--quiet")
        assert result.returncode == 0, result.stderr
        (record_path,) = (tmp_path / split).glob("*/result.json")
        record = json.loads(record_path.read_text())
        assert record["status"] == "finished" and record["split"] == split
        assert record["spec"]["ground_size"] == record["spec"]["aerial_size"] == [64, 64]  # square drone views
        assert {"R@1", "AP"} <= set(record["metrics"]) and "error_median_m" not in record["metrics"]
        queries = len(QUERIED) * DRONE_VIEWS if split == "drone2sat" else len(QUERIED)
        assert record["num_queries"] == queries


def test_a_field_of_view_is_refused_for_drone_photos(release, tmp_path):
    result = cli("run", "--preset", "smoke", "--dataset", "university1652", "--data-root", str(release),
                 "--fov", "90", "--runs-dir", str(tmp_path))
    assert result.returncode == 2 and "ground images of dataset 'university1652' are images" in result.stderr
    assert not (tmp_path).exists() or not any(tmp_path.iterdir())


def test_data_check_counts_every_folder(release):
    result = cli("data", "check", "--dataset", "university1652", "--data-root", str(release), "--quiet",
                 env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train/drone" in result.stdout
    assert f"{len(TRAIN)} buildings, {len(TRAIN) * DRONE_VIEWS} images" in result.stdout
    assert f"{len(QUERIED)} (aerial)" in result.stdout  # sat2drone queries with satellite images
    assert "0 errors, 0 warnings" in result.stdout


@pytest.fixture
def broken(release, tmp_path):
    copy = tmp_path / "University-Release"
    shutil.copytree(release, copy)
    return copy


def test_a_queried_building_missing_from_the_gallery_is_an_error_naming_the_folders(broken, registry):
    shutil.rmtree(broken / "test/gallery_satellite/0102")
    with pytest.raises(DatasetFormatError, match=r"test/query_drone/0102: building 0102 is queried but .*"
                                                 r"test/gallery_satellite/0102 does not exist"):
        cvbench.create("dataset", "university1652", broken).load("drone2sat", "val")
    result = cli("data", "check", "--dataset", "university1652", "--data-root", str(broken), "--quiet",
                 env={"COLUMNS": "300"})
    assert result.returncode == 1 and "query and gallery folders disagree" in result.stdout


def test_an_empty_building_folder_is_a_warning_naming_it(broken, registry):
    shutil.rmtree(broken / "train/drone/0003")
    (broken / "train/drone/0003").mkdir()
    with pytest.warns(DatasetWarning, match=r"train/drone/0003: holds no image"):
        train = cvbench.create("dataset", "university1652", broken).load("drone2sat", "train")
    assert "0003" not in buildings(train.ground_meta)


def test_a_training_building_without_satellite_image_is_left_out_with_a_warning(broken, registry):
    shutil.rmtree(broken / "train/satellite/0004")
    with pytest.warns(DatasetWarning, match=r"train/drone/0004: has no satellite image"):
        train = cvbench.create("dataset", "university1652", broken).load("drone2sat", "train")
    assert "0004" not in buildings(train.ground_meta) and "0004" not in buildings(train.aerial_meta)


def test_a_wrong_root_names_every_missing_folder_and_where_to_get_the_data(tmp_path, registry):
    with pytest.raises(DatasetNotFoundError, match=r"(?s)missing: .*train/drone.*missing: .*test/gallery_street"
                                                   r".*University1652-Baseline"):
        cvbench.create("dataset", "university1652", tmp_path)
