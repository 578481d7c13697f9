"""The offset layout's tile grid, positives and semi-positives, against hand-computed values and brute force."""

from __future__ import annotations

import numpy as np
import pytest

from cvbench.errors import SpecError

from cvbench_plugins.datasets.synthetic import Synthetic
from cvbench_plugins.datasets.synthetic.layout import TileGrid

# A 256 m city with 64 m tiles: stride 32 m, centres at 32, 64, ..., 224 on each axis: 7 x 7 tiles.
GRID = TileGrid.covering(256, 64.0)


def test_the_grid_has_the_hand_counted_tiles_numbered_row_major_from_the_north_west():
    assert GRID.count == 7 and len(GRID) == 49 and GRID.stride == 32 and GRID.span == (32.0, 224.0)
    centres = GRID.centres()
    assert centres[0].tolist() == [32.0, 224.0]     # north-west corner
    assert centres[6].tolist() == [224.0, 224.0]    # north-east corner
    assert centres[7].tolist() == [32.0, 192.0]     # one stride south
    assert centres[48].tolist() == [224.0, 32.0]    # south-east corner


@pytest.mark.parametrize("point, positive, semi", [
    # x 70: centres 64 (6 m) and 96 (26 m) are within half a tile; y 200: 192 (8 m) and 224 (24 m).
    # Nearest: x 64 (column 1), y 192 (row 1) -> tile 8; the others: rows 0-1 x columns 1-2.
    ((70.0, 200.0), 8, {1, 2, 9}),
    # By the south-west corner: x and y 33 are within 32 m of centres 32 and 64.
    ((33.0, 33.0), 42, {35, 36, 43}),
    # On a tile centre: only that tile's neighbours at exactly 32 m, which do not contain it.
    ((128.0, 128.0), 24, set()),
    # 1 m east of a centre: the tile east of it (31 m away) contains the point too.
    ((129.0, 128.0), 24, {25}),
])
def test_positive_and_semi_positives_of_hand_placed_queries(point, positive, semi):
    assert GRID.nearest(np.array([point])).tolist() == [positive]
    row = GRID.semi_positives(np.array([point]))[0]
    assert set(row[row >= 0].tolist()) == semi
    assert (row[len(semi):] == -1).all()


def brute_force(points: np.ndarray, centres: np.ndarray, half: float):
    """Nearest centre and the set of all containing tiles, by checking every tile."""
    distance = np.hypot(points[:, None, 0] - centres[None, :, 0], points[:, None, 1] - centres[None, :, 1])
    inside = (np.abs(points[:, None, 0] - centres[None, :, 0]) < half) & \
             (np.abs(points[:, None, 1] - centres[None, :, 1]) < half)
    return distance.argmin(1), [set(np.nonzero(row)[0].tolist()) for row in inside]


def test_grid_queries_match_brute_force_over_random_points():
    points = np.random.default_rng(0).uniform(*GRID.span, (500, 2))
    nearest, containing = brute_force(points, GRID.centres(), 32.0)
    assert (GRID.nearest(points) == nearest).all()
    for row, positive, tiles in zip(GRID.semi_positives(points), nearest, containing):
        assert {positive, *row[row >= 0].tolist()} == tiles and positive not in row


@pytest.fixture(scope="module")
def offset_pairs(tmp_path_factory):
    dataset = Synthetic(tmp_path_factory.mktemp("offset"), layout="offset", city_size=256, train_pairs=40,
                        val_pairs=40, num_train_cities=1, num_val_cities=2, seed=5)
    return dataset.load("cross_area", "val")


def test_offset_dataset_references_tile_each_val_city_and_match_brute_force(offset_pairs):
    pairs = offset_pairs
    ground, aerial = pairs.ground_meta, pairs.aerial_meta
    assert pairs.num_references == 2 * 49 and aerial.city.nunique() == 2
    assert pairs.semi_positives.shape == (40, 3)
    for i in range(pairs.num_queries):
        same_city = np.nonzero(aerial.city.values == ground.city[i])[0]
        centres = aerial[["x", "y"]].values[same_city]
        point = ground[["x", "y"]].values[i:i + 1]
        nearest, (containing,) = brute_force(point, centres, 32.0)
        assert pairs.positives[i] == same_city[nearest[0]]
        semi = pairs.semi_positives[i]
        assert {pairs.positives[i], *semi[semi >= 0].tolist()} == set(same_city[list(containing)].tolist())


def test_aligned_tiles_are_centred_on_their_queries(tmp_path):
    pairs = Synthetic(tmp_path, city_size=256, train_pairs=20, val_pairs=20, num_train_cities=1,
                      num_val_cities=1).load("cross_area", "val")
    assert pairs.semi_positives is None
    assert (pairs.positives == np.arange(20)).all()
    assert np.array_equal(pairs.ground_meta[["x", "y"]].values, pairs.aerial_meta[["x", "y"]].values)
    assert (pairs.ground_meta.scene == pairs.aerial_meta.scene).all()
    low, high = GRID.span
    assert pairs.ground_meta[["x", "y"]].values.min() >= low and pairs.ground_meta[["x", "y"]].values.max() <= high


def test_reference_spacing_keeps_every_two_queries_of_a_city_apart(tmp_path):
    pairs = Synthetic(tmp_path, city_size=256, train_pairs=10, val_pairs=30, num_train_cities=1, num_val_cities=2,
                      reference_spacing=20).load("cross_area", "val")
    for _, city in pairs.ground_meta.groupby("city"):
        points = city[["x", "y"]].to_numpy()
        distances = np.linalg.norm(points[:, None] - points[None], axis=-1)  # every pair, by brute force
        assert distances[np.triu_indices(len(points), 1)].min() >= 20
    assert np.array_equal(pairs.ground_meta[["x", "y"]].values, pairs.aerial_meta[["x", "y"]].values)


def test_reference_spacing_names_what_does_not_fit(tmp_path):
    with pytest.raises(SpecError, match="room for .* cameras 100 m apart but 15 queries"):
        Synthetic(tmp_path, city_size=256, train_pairs=30, val_pairs=10, num_train_cities=2, num_val_cities=1,
                  reference_spacing=100).load("cross_area", "train")
    with pytest.raises(SpecError, match="offset layout"):
        Synthetic(tmp_path, layout="offset", reference_spacing=10)
