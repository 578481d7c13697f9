"""Localization heatmaps, feature-map overlays and training curves (thesis appendix 6.3, 6.4, figure 4.5)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from PIL import Image

from cvbench.analysis.curves import build_training_curves_figure, training_curves_figure
from cvbench.analysis.feature_maps import activation_map, build_feature_map_figure, feature_map_figure
from cvbench.analysis.heatmaps import (
    QueryMap,
    build_localization_figure,
    local_metres,
    localization_figure,
    rank_caption,
)

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


def _rendered(fig) -> tuple[object, np.ndarray]:
    """Lay ``fig`` out and draw it as the PNG writer does: its renderer and its pixels (RGB)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer(), np.asarray(canvas.buffer_rgba())[..., :3].astype(np.int16)


def _city_map(seed: int) -> QueryMap:
    """400 tiles, 20 x 20 at 60 m by 50 m (wider than tall), with a long two-part title as the analysis makes."""
    xy = np.stack(np.meshgrid(np.arange(20) * 60.0, np.arange(20) * 50.0), axis=-1).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-0.5, 0.7, len(xy))
    return QueryMap(f"query {seed} · garden_city-6: true tile 77/400", xy, scores, tuple(xy[150] + 5.0), 150, 50.0)


def test_heatmap_titles_stay_clear_of_the_colour_bars():
    fig = build_localization_figure([_city_map(s) for s in range(4)], columns=4)
    renderer, _ = _rendered(fig)
    panels = [ax for ax in fig.axes if ax.get_title()]
    bars = [ax.collections[0].colorbar.ax for ax in panels]
    assert len(panels) == len(bars) == 4
    for panel in panels:
        title = panel.title.get_window_extent(renderer)
        for bar in bars:
            assert not title.overlaps(bar.get_window_extent(renderer)), panel.get_title()


def test_heatmap_marks_true_and_top1_tiles_on_top_visible_and_in_the_legend():
    query_map = _city_map(0)
    fig = build_localization_figure([query_map])
    renderer, pixels = _rendered(fig)
    (ax,) = [ax for ax in fig.axes if ax.get_title()]
    tiles = ax.collections[0]
    expected = {"true tile": query_map.reference_xy[150], "top-1 tile": query_map.reference_xy[np.argmax(
        query_map.scores)], "query location": query_map.true_xy}
    marks = {line.get_label(): line for line in ax.lines}
    for name, xy in expected.items():
        assert (marks[name].get_xdata()[0], marks[name].get_ydata()[0]) == pytest.approx(tuple(xy))
        assert marks[name].get_zorder() > tiles.get_zorder()  # drawn over the tiles
    assert len({marks[name].get_marker() for name in expected}) == 3  # three different shapes
    (legend,) = fig.legends
    assert {text.get_text() for text in legend.get_texts()} == set(expected)

    def around(xy, half=14):
        x, y = ax.transData.transform(xy)
        row = pixels.shape[0] - round(y)
        return pixels[row - half: row + half, round(x) - half: round(x) + half]

    # Tiles here are about 14 px wide; each marker stands out on any viridis colour: the true tile's red
    # square, the top-1 tile's ring in white with a black outline (on yellow, a white ring alone vanishes).
    assert _count_near(around(expected["true tile"]), (255, 0, 0), tol=40) > 20
    top1 = around(expected["top-1 tile"])
    assert _count_near(top1, (255, 255, 255), tol=20) > 20 and _count_near(top1, (0, 0, 0), tol=40) > 20


def test_heatmap_caption_explains_the_rank_in_the_titles():
    caption = rank_caption([400, 400])
    assert caption == ("true tile r/400: rank r of the true tile among the 400 gallery tiles nearest the query, "
                       "by cosine similarity (1 = retrieved first)")
    assert "among the N (120 to 400) gallery tiles" in rank_caption([400, 120])
    fig = build_localization_figure([_city_map(0), _city_map(1)], caption=caption)
    renderer, _ = _rendered(fig)
    (text,) = [t for t in fig.texts if t.get_text() == caption]
    assert not text.get_window_extent(renderer).overlaps(fig.legends[0].get_window_extent(renderer))
    for ax in fig.axes:
        assert not text.get_window_extent(renderer).overlaps(ax.get_tightbbox(renderer))


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


def _panel_pixels(fig, pixels: np.ndarray) -> np.ndarray:
    """The pixels inside the figure's first axes (the first image panel), as the PNG at 120 dpi drew them."""
    x0, y0, x1, y1 = (np.array(fig.axes[0].get_position().extents) * np.tile(fig.get_size_inches(), 2) * 120)
    height = pixels.shape[0]
    return pixels[round(height - y1) + 2: round(height - y0) - 2, round(x0) + 2: round(x1) - 2]


def test_feature_map_overlay_is_bright_where_the_features_are_with_a_perceptual_scale(tmp_path):
    images = np.full((1, 32, 64, 3), 128, dtype=np.uint8)
    features = np.zeros((1, 4, 4, 8))
    features[:, :, :, :2] = 5.0  # strong activations in the left quarter only
    rows = [("grey", images, features)]
    panel = _panel_pixels(build_feature_map_figure(rows), _pixels(feature_map_figure(rows, tmp_path / "overlay.png")))
    quarter = panel.shape[1] // 4
    left, right = panel[:, : quarter - 2].reshape(-1, 3), panel[:, -quarter:].reshape(-1, 3)
    # A perceptual map runs dark to light: half-blended with grey, magma(1) #fcfdbf gives about (190, 190, 160),
    # magma(0) #000004 about (64, 64, 66); jet's dark red and dark blue would differ by some 10 in brightness.
    assert left.mean() > right.mean() + 80
    plain = _pixels(feature_map_figure(rows, tmp_path / "plain.png", alpha=0.0))
    assert ((plain.max(axis=-1) - plain.min(axis=-1)) > 20).sum() == 0  # alpha 0: the image alone, no scale


def test_feature_map_figure_has_a_colour_bar_of_the_overlay_colour_map():
    fig = build_feature_map_figure([_row(2, 32, 64)])
    overlays = [ax.images[1] for ax in fig.axes if len(ax.images) == 2]
    assert len(overlays) == 2
    assert {image.get_cmap().name for image in overlays} <= {"viridis", "magma", "cividis", "inferno"}
    (bar,) = [ax for ax in fig.axes if "activation" in ax.get_ylabel()]
    (scale,) = [c for c in bar.collections if isinstance(c, QuadMesh)]  # the bar's colours
    assert scale.get_cmap().name == overlays[0].get_cmap().name
    assert bar.get_position().x0 > max(ax.get_position().x1 for ax in fig.axes if ax is not bar)  # beside, not over


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


def test_training_curves_recall_axis_starts_at_zero():
    # R@1 from 30 to 60 %: left to itself matplotlib would start the axis near 28 and exaggerate the rise.
    fig = build_training_curves_figure([("run", _metrics(range(1, 11), set(range(1, 11))).assign(
        **{"R@1": np.linspace(30.0, 60.0, 10)}))])
    (recall,) = [ax for ax in fig.axes if ax.get_title().startswith("R@1")]
    low, high = recall.get_ylim()
    assert low == 0.0 and high >= 60.0


# --- file formats and resolution ----------------------------------------------------------------------------------

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_every_figure_is_written_in_the_format_its_file_name_asks_for(tmp_path, fmt):
    written = [
        localization_figure([_grid_map(0)], tmp_path / f"heatmaps.{fmt}"),
        feature_map_figure([_row(2, 16, 32)], tmp_path / f"feature_maps.{fmt}"),
        training_curves_figure([("run", _metrics(range(3), {0, 1, 2}))], tmp_path / f"curves.{fmt}"),
    ]
    for path in written:
        assert path.suffix == f".{fmt}" and path.read_bytes().startswith(MAGIC[fmt])
    if fmt == "svg":
        assert b"<svg" in written[0].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporary left


def test_figure_dpi_sets_the_pixels_and_bad_names_or_dpi_write_nothing(tmp_path):
    frames = [("run", _metrics(range(3), {0, 1, 2}))]
    with Image.open(training_curves_figure(frames, tmp_path / "curves.png", dpi=60)) as image:
        assert image.size == (16 * 60, round(4.4 * 60))  # the figure is 16 x 4.4 inches
    with pytest.raises(ValueError, match="jpg"):
        training_curves_figure(frames, tmp_path / "curves.jpg")
    with pytest.raises(ValueError, match="dpi"):
        training_curves_figure(frames, tmp_path / "curves.pdf", dpi=0)
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_a_failed_figure_write_keeps_the_previous_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    out = training_curves_figure([("run", _metrics(range(3), {0, 1, 2}))], tmp_path / "curves.svg")
    before = out.read_bytes()

    def half_written(self, target, **kwargs):
        Path(target).write_bytes(b"<?xml trunc")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(OSError, match="disk full"):
        training_curves_figure([("run", _metrics(range(3), {0, 1, 2}))], out)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["curves.svg"]
