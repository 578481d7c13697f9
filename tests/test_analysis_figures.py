"""Localization heatmaps, feature-map overlays and training curves (thesis appendix 6.3, 6.4, figure 4.5)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cvbench.analysis.curves import training_curves_figure
from cvbench.analysis.feature_maps import activation_map, feature_map_figure
from cvbench.analysis.heatmaps import QueryMap, local_metres, localization_figure

METRES_PER_MILLIDEGREE = 6371008.8 * math.pi / 180 * 0.001  # 111.195 m: one arc of 0.001 deg on the sphere
VIRIDIS_LOW = (0x44, 0x01, 0x54)  # published end points of viridis: #440154 and #fde725
VIRIDIS_HIGH = (0xFD, 0xE7, 0x25)


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def _distinct_colours(pixels: np.ndarray) -> int:
    return len(np.unique(pixels.reshape(-1, 3), axis=0))


def _count_near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(pixels - np.array(rgb)).max(axis=-1) <= tol).sum())


# --- local_metres -------------------------------------------------------------------------------------------------

def test_local_metres_one_millidegree_north_and_east_by_hand():
    north = local_metres(np.array([0.0, 0.001]), np.array([0.0, 0.0]), origin=(0.0, 0.0))
    assert north[0] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert north[1] == pytest.approx([0.0, 111.2], abs=0.05)
    # At 60 deg latitude a degree of longitude is cos(60) = 1/2 as long: 55.6 m.
    east = local_metres(np.array([60.0]), np.array([10.001]), origin=(60.0, 10.0))
    assert east[0] == pytest.approx([55.6, 0.0], abs=0.05)
    assert east[0, 0] == pytest.approx(METRES_PER_MILLIDEGREE / 2, rel=1e-9)


def test_local_metres_default_origin_is_the_mean():
    xy = local_metres(np.array([10.0, 10.002]), np.array([20.0, 20.0]))
    assert xy == pytest.approx(np.array([[0.0, -METRES_PER_MILLIDEGREE], [0.0, METRES_PER_MILLIDEGREE]]), rel=1e-9)


def test_local_metres_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="lon"):
        local_metres(np.zeros(3), np.zeros(2))


# --- localization heatmaps ----------------------------------------------------------------------------------------

def _grid_map(seed: int, tile_metres: float | None = 50.0) -> QueryMap:
    """A 5 x 5 grid of 50 m tiles; similarity falls with the distance from the query."""
    xy = np.stack(np.meshgrid(np.arange(5) * 50.0, np.arange(5) * 50.0), axis=-1).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    true_xy = xy[12] + rng.uniform(-15, 15, size=2)
    scores = 1.0 - np.linalg.norm(xy - true_xy, axis=1) / 400.0
    return QueryMap(f"query {seed} · Synthetic · true tile rank 1", xy, scores, tuple(true_xy), 12, tile_metres)


def test_localization_figure_written_with_the_colour_scale_extremes_on_the_tiles(tmp_path):
    out = localization_figure([_grid_map(0)], tmp_path / "one.png")
    assert out == tmp_path / "one.png"
    pixels = _pixels(out)
    height, width = pixels.shape[:2]
    assert 300 <= width <= 2000 and 300 <= height <= 2000
    assert _distinct_colours(pixels) > 50
    # The most and least similar tiles are squares hundreds of pixels in area, far more than
    # the end of the colorbar alone holds.
    assert _count_near(pixels, VIRIDIS_HIGH) > 500
    assert _count_near(pixels, VIRIDIS_LOW) > 500
    assert _count_near(pixels, (255, 0, 0), tol=40) > 20  # the query star and the true tile's outline


def test_localization_figure_grows_with_queries_and_estimates_the_tile_size(tmp_path):
    one = _pixels(localization_figure([_grid_map(0)], tmp_path / "one.png"))
    six = _pixels(localization_figure([_grid_map(s) for s in range(6)], tmp_path / "six.png", columns=3))
    assert six.shape[1] > 2.5 * one.shape[1] and six.shape[0] > 1.8 * one.shape[0]
    estimated = _pixels(localization_figure([_grid_map(0, tile_metres=None)], tmp_path / "estimated.png"))
    assert np.array_equal(estimated, one)  # median nearest-neighbour spacing of the grid = 50 m


@pytest.mark.parametrize(("change", "argument"), [
    ({"scores": np.zeros(24)}, "scores"),
    ({"positive": 25}, "positive"),
    ({"reference_xy": np.zeros((25, 3))}, "reference_xy"),
    ({"tile_metres": -1.0}, "tile_metres"),
])
def test_query_map_rejects_shapes_that_do_not_fit(change, argument):
    fields = {"title": "q", "reference_xy": np.zeros((25, 2)), "scores": np.zeros(25), "true_xy": (0.0, 0.0),
              "positive": 0, **change}
    with pytest.raises(ValueError, match=argument):
        QueryMap(**fields)


def test_localization_figure_rejects_no_maps_and_bad_columns(tmp_path):
    with pytest.raises(ValueError, match="maps"):
        localization_figure([], tmp_path / "none.png")
    with pytest.raises(ValueError, match="columns"):
        localization_figure([_grid_map(0)], tmp_path / "bad.png", columns=0)
    assert not list(tmp_path.iterdir())


# --- feature maps -------------------------------------------------------------------------------------------------

def test_activation_map_by_hand():
    features = np.array([[[1.0, -2.0], [0.0, 4.0]],
                         [[-3.0, 2.0], [2.0, -2.0]]])
    # mean |x| over channels = [[2, 2], [1, 3]]; min 1, max 3 -> (v - 1) / 2
    assert activation_map(features) == pytest.approx(np.array([[0.5, 0.5], [0.0, 1.0]]))
    assert np.array_equal(activation_map(np.full((3, 2, 2), -7.0)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="features"):
        activation_map(np.zeros((2, 2)))


def _row(count: int, height: int, width: int, seed: int = 0) -> tuple[str, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)
    return f"{count} images", images, rng.normal(size=(count, 8, max(height // 8, 1), max(width // 8, 1)))


def test_feature_map_figure_sizes_panels_by_aspect_and_rows(tmp_path):
    panoramas = _pixels(feature_map_figure([_row(2, 32, 64)], tmp_path / "pano.png"))
    squares = _pixels(feature_map_figure([_row(2, 32, 32)], tmp_path / "square.png"))
    both = _pixels(feature_map_figure([_row(2, 32, 64), _row(5, 32, 32, seed=1)], tmp_path / "both.png"))
    assert panoramas.shape[1] > 1.7 * squares.shape[1]  # 2:1 panels against 1:1 panels, same height
    assert panoramas.shape[0] == pytest.approx(squares.shape[0], abs=2)
    assert both.shape[0] > 1.8 * panoramas.shape[0]  # a second row
    assert _distinct_colours(both) > 100
    # Many wide panoramas are shrunk to fit a row of 16 inches (at 120 dpi) instead of growing without end.
    many = _pixels(feature_map_figure([_row(12, 16, 64)], tmp_path / "many.png"))
    assert many.shape[1] <= 17 * 120 and many.shape[0] < panoramas.shape[0]


def test_feature_map_overlay_is_hot_where_the_features_are(tmp_path):
    images = np.full((1, 32, 64, 3), 128, dtype=np.uint8)
    features = np.zeros((1, 4, 4, 8))
    features[:, :, :, :2] = 5.0  # strong activations in the left quarter only
    pixels = _pixels(feature_map_figure([("grey", images, features)], tmp_path / "overlay.png", alpha=0.5))
    coloured = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 20  # the panel; title text is grey
    rows, cols = np.nonzero(coloured)
    panel = pixels[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    quarter = panel.shape[1] // 4
    left, right = panel[:, : quarter - 2].reshape(-1, 3), panel[:, -quarter:].reshape(-1, 3)
    # jet(1) is dark red, jet(0) dark blue, each half-blended with grey.
    assert left[:, 0].mean() > left[:, 2].mean() + 40
    assert right[:, 2].mean() > right[:, 0].mean() + 40
    plain = _pixels(feature_map_figure([("grey", images, features)], tmp_path / "plain.png", alpha=0.0))
    assert ((plain.max(axis=-1) - plain.min(axis=-1)) > 20).sum() == 0  # alpha 0: the image alone


def test_feature_map_figure_rejects_what_does_not_fit(tmp_path):
    title, images, features = _row(2, 16, 16)
    with pytest.raises(ValueError, match="features"):
        feature_map_figure([(title, images, features[:1])], tmp_path / "x.png")
    with pytest.raises(ValueError, match="images"):
        feature_map_figure([(title, images.astype(np.float32), features)], tmp_path / "x.png")
    with pytest.raises(ValueError, match="images"):
        feature_map_figure([(title, images[..., :2], features)], tmp_path / "x.png")
    with pytest.raises(ValueError, match="rows"):
        feature_map_figure([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="alpha"):
        feature_map_figure([(title, images, features)], tmp_path / "x.png", alpha=1.5)
    assert not list(tmp_path.iterdir())


# --- training curves ----------------------------------------------------------------------------------------------

def _metrics(epochs: range, evaluated: set[int], uniformity: bool = True, scale: float = 1.0) -> pd.DataFrame:
    """A metrics.csv frame: loss from epoch 1 on, R@ and uniformity columns on evaluated epochs only."""
    rows = []
    for epoch in epochs:
        row = {"epoch": epoch, "loss": np.nan, "lr": 1e-4, "R@1": np.nan}
        if epoch in evaluated:
            row.update({"loss": np.nan if epoch == 0 else 2.0 / epoch, "R@1": 3.0 * epoch * scale})
            if uniformity:
                row.update({"uniformity_ground": -1.0 - 0.1 * epoch * scale,
                            "uniformity_satellite": -1.5 - 0.2 * epoch * scale,
                            "uniformity_all": -2.0 - 0.3 * epoch * scale})
        rows.append(row)
    return pd.DataFrame(rows)


def test_training_curves_draw_lines_through_evaluated_epochs_not_gaps(tmp_path):
    evaluated = {0, 2, 4, 6}
    gappy = _metrics(range(7), evaluated)  # odd epochs: every value NaN
    dense = _metrics(sorted(evaluated), evaluated)
    # Through a CSV, as the runs write it: NaN comes back from empty fields.
    gappy.to_csv(tmp_path / "metrics.csv", index=False)
    gappy = pd.read_csv(tmp_path / "metrics.csv")
    drawn = _pixels(training_curves_figure([("run", gappy)], tmp_path / "gappy.png"))
    expected = _pixels(training_curves_figure([("run", dense)], tmp_path / "dense.png"))
    assert np.array_equal(drawn, expected)


def test_training_curves_with_a_run_without_uniformity(tmp_path):
    full = _metrics(range(5), {0, 2, 4})
    no_uniformity = _metrics(range(5), {0, 1, 2, 3, 4}, uniformity=False, scale=0.5)
    assert "uniformity_all" not in no_uniformity.columns
    out = training_curves_figure([("with", full), ("without", no_uniformity)], tmp_path / "curves.png")
    pixels = _pixels(out)
    assert 800 <= pixels.shape[1] <= 3000 and 300 <= pixels.shape[0] <= 1200
    assert _distinct_colours(pixels) > 20
    assert _count_near(pixels, (255, 0, 0), tol=30) > 50  # uniformity ground
    assert _count_near(pixels, (0, 0, 255), tol=30) > 50  # uniformity satellite
    only_epochs = training_curves_figure([("bare", pd.DataFrame({"epoch": [0, 1]}))], tmp_path / "bare.png")
    assert _pixels(only_epochs).shape == pixels.shape


def test_training_curves_reject_no_runs_and_frames_without_epochs(tmp_path):
    with pytest.raises(ValueError, match="runs"):
        training_curves_figure([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="epoch"):
        training_curves_figure([("run", pd.DataFrame({"loss": [1.0]}))], tmp_path / "x.png")
    assert not list(tmp_path.iterdir())
