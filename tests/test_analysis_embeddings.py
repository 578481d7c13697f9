"""Tests for cvbench.analysis.embeddings (thesis section 3.3, figures 4.3 and 4.4).

Truth used here: the von Mises density written out by hand with scipy's I0 (not the
scaled i0e the module uses), numerical integration over the circle, cluster structure
that any faithful 2-D map keeps, and pixel colours of the written PNG.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from scipy.spatial.distance import cdist
from scipy.special import i0

from cvbench.analysis.embeddings import (
    PointSet,
    embedding_figure,
    embedding_panels,
    tsne,
    uniformity_caption,
    vmf_density,
)

# ------------------------------------------------------------------ vmf_density


def circle_integral(angles: np.ndarray, kappa: float) -> float:
    grid = np.linspace(-math.pi, math.pi, 20001)
    return float(np.trapezoid(vmf_density(angles, grid, kappa), grid))


@pytest.mark.parametrize("kappa", [1.0, 10.0, 500.0, 5000.0])
def test_vmf_density_integrates_to_one_without_overflow(kappa):
    angles = np.array([0.3, -2.0, 3.1, -3.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp or I0 would warn
        total = circle_integral(angles, kappa)
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("angle", [1.234, -0.5, 3.1, -3.1])
def test_vmf_density_peaks_at_the_data_angle(angle):
    grid = np.linspace(-math.pi, math.pi, 3600, endpoint=False)
    density = vmf_density(np.array([angle]), grid, kappa=20.0)
    step = 2 * math.pi / 3600
    gap = abs((grid[np.argmax(density)] - angle + math.pi) % (2 * math.pi) - math.pi)
    assert gap <= step


def test_vmf_density_equals_the_hand_formula():
    kappa, angle = 3.0, 0.7
    grid = np.array([0.0, 0.7, 2.0, -3.0])
    expected = [math.exp(kappa * math.cos(g - angle)) / (2 * math.pi * i0(kappa)) for g in grid]
    np.testing.assert_allclose(vmf_density(np.array([angle]), grid, kappa), expected, rtol=1e-12)
    # several angles: the mean of their kernels
    angles = np.array([0.7, -1.0])
    expected = [
        (math.exp(kappa * math.cos(g - 0.7)) + math.exp(kappa * math.cos(g + 1.0))) / 2 / (2 * math.pi * i0(kappa))
        for g in grid
    ]
    np.testing.assert_allclose(vmf_density(angles, grid, kappa), expected, rtol=1e-12)


def test_vmf_density_is_periodic():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-math.pi, math.pi, 7)
    grid = np.linspace(-math.pi, math.pi, 50, endpoint=False)
    base = vmf_density(angles, grid, 8.0)
    np.testing.assert_allclose(vmf_density(angles, grid + 2 * math.pi, 8.0), base, rtol=1e-10)
    np.testing.assert_allclose(vmf_density(angles + 2 * math.pi, grid, 8.0), base, rtol=1e-10)


@pytest.mark.parametrize("kappa", [0.0, -1.0, float("nan"), float("inf")])
def test_vmf_density_rejects_bad_kappa(kappa):
    with pytest.raises(ValueError, match="kappa"):
        vmf_density(np.array([0.0]), np.array([0.0]), kappa)


def test_vmf_density_rejects_bad_angles():
    with pytest.raises(ValueError, match="angles"):
        vmf_density(np.array([]), np.array([0.0]))
    with pytest.raises(ValueError, match="angles"):
        vmf_density(np.array([[0.0]]), np.array([0.0]))
    with pytest.raises(ValueError, match="angles"):
        vmf_density(np.array([np.nan]), np.array([0.0]))


# ------------------------------------------------------------------ tsne


def two_clusters(n_each: int = 25, dim: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    far = np.zeros(dim)
    far[0] = 20.0
    return np.vstack([rng.normal(size=(n_each, dim)), rng.normal(size=(n_each, dim)) + far])


def test_tsne_shape_and_determinism():
    x = two_clusters()
    first = tsne(x, seed=3)
    assert first.shape == (50, 2)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(tsne(x, seed=3), first)


def test_tsne_keeps_separated_clusters_apart():
    x = two_clusters()
    y = tsne(x, seed=0)
    cluster = np.repeat([0, 1], 25)
    distances = cdist(y, y)
    np.fill_diagonal(distances, np.inf)
    assert (cluster[distances.argmin(axis=1)] == cluster).all()


@pytest.mark.parametrize("n", [2, 3, 5])
def test_tsne_small_n(n):
    x = np.random.default_rng(1).normal(size=(n, 6)).astype(np.float32)
    y = tsne(x, perplexity=30.0)
    assert y.shape == (n, 2)
    assert np.isfinite(y).all()


def test_tsne_one_dimensional_input_and_collapsed_points():
    line = np.arange(12, dtype=float)[:, None]
    assert tsne(line).shape == (12, 2)
    # identical rows (a collapsed encoder) would break scikit-learn's PCA initialisation
    np.testing.assert_array_equal(tsne(np.ones((6, 4))), np.zeros((6, 2)))


def test_tsne_rejects_bad_input():
    with pytest.raises(ValueError, match="points"):
        tsne(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="points"):
        tsne(np.zeros(4))
    with pytest.raises(ValueError, match="points"):
        tsne(np.array([[0.0, 1.0], [np.inf, 0.0]]))
    with pytest.raises(ValueError, match="perplexity"):
        tsne(np.eye(4), perplexity=0.0)


# ------------------------------------------------------------------ panels


def ground_satellite(n: int = 20, dim: int = 8) -> list[PointSet]:
    rng = np.random.default_rng(2)
    shift = np.zeros(dim)
    shift[0] = 8.0
    return [
        PointSet("ground", rng.normal(size=(n, dim)), "red"),
        PointSet("satellite", rng.normal(size=(n, dim)) + shift, "blue"),
    ]


def test_embedding_panels_share_one_tsne_and_project_it():
    sets = ground_satellite()
    fig = Figure()
    axes = fig.subplots(1, 3)
    embedding_panels(axes, sets, seed=4, kappa=6.0, title="row", caption="cap")

    stacked = tsne(np.vstack([s.points for s in sets]), seed=4)
    parts = [stacked[:20], stacked[20:]]
    for collection, expected in zip(axes[0].collections, parts):
        np.testing.assert_allclose(collection.get_offsets(), expected)
    for collection, expected in zip(axes[1].collections, parts):
        on_circle = np.asarray(collection.get_offsets())
        np.testing.assert_allclose(np.linalg.norm(on_circle, axis=1), 1.0)
        np.testing.assert_allclose(on_circle, expected / np.linalg.norm(expected, axis=1, keepdims=True))
    lines = axes[2].get_lines()
    assert [line.get_label() for line in lines] == ["ground", "satellite", "all"]
    grid = lines[0].get_xdata()
    assert grid[0] == pytest.approx(-math.pi) and grid[-1] < math.pi
    theta = np.arctan2(parts[0][:, 1], parts[0][:, 0])
    np.testing.assert_allclose(lines[0].get_ydata(), vmf_density(theta, grid, 6.0))
    assert axes[0].get_title(loc="left") == "row"
    assert axes[1].get_xlabel() == "cap"


def test_embedding_panels_validates_sets():
    fig = Figure()
    axes = fig.subplots(1, 3)
    good = ground_satellite()[0]
    with pytest.raises(ValueError, match="axes"):
        embedding_panels(axes[:2], [good])
    with pytest.raises(ValueError, match="sets"):
        embedding_panels(axes, [])
    bad_nan = good.points.copy()
    bad_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="satellite"):
        embedding_panels(axes, [good, PointSet("satellite", bad_nan)])
    with pytest.raises(ValueError, match="flat"):
        embedding_panels(axes, [good, PointSet("flat", np.zeros(8))])
    with pytest.raises(ValueError, match="odd"):
        embedding_panels(axes, [good, PointSet("odd", good.points, "not-a-colour")])


# ------------------------------------------------------------------ figure


def has_pixels(rgb: np.ndarray, color: tuple[int, int, int], tol: int = 40) -> bool:
    return bool((np.abs(rgb.astype(int) - np.array(color)).max(axis=2) <= tol).any())


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> tuple[Path, Path, list]:
    folder = tmp_path_factory.mktemp("embeddings")
    caption = uniformity_caption({"ground": -0.93, "satellite": -2.76, "all": -1.92})
    one = embedding_figure([("(a) ImageNet", ground_satellite(), caption)], folder / "one.png")
    rng = np.random.default_rng(5)
    cities = [PointSet(name, rng.normal(size=(15, 8)) + 4 * i) for i, name in enumerate(["g SF", "s SF", "g Chi"])]
    two = embedding_figure(
        [("(a)", ground_satellite(), caption), ("(b) three cities, default colours", cities, "")],
        folder / "sub" / "two.png",
        seed=1,
    )
    return one, two, sorted(p.name for p in folder.rglob("*"))


def test_embedding_figure_writes_a_png(figures):
    one, two, listing = figures
    assert one.name == "one.png" and two.name == "two.png"
    assert listing == ["one.png", "sub", "two.png"]  # no temporary files left
    with Image.open(one) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > height > 200
    with Image.open(two) as image:
        assert image.size[0] == width and image.size[1] > 1.5 * height


def test_embedding_figure_is_not_blank(figures):
    one, two, _ = figures
    rgb = np.asarray(Image.open(one).convert("RGB"))
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20
    assert np.asarray(Image.open(one).convert("L")).std() > 5
    assert has_pixels(rgb, (255, 0, 0))  # ground, red as in figure 4.3
    assert has_pixels(rgb, (0, 0, 255))  # satellite, blue
    rgb_two = np.asarray(Image.open(two).convert("RGB"))
    for tab10 in [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)]:  # default palette
        assert has_pixels(rgb_two, tab10, tol=10)


def test_embedding_figure_rejects_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        embedding_figure([], tmp_path / "empty.png")
    sets = [PointSet("ground", np.zeros((4, 8))), PointSet("satellite", np.ones((4, 6)))]
    with pytest.raises(ValueError, match="satellite"):
        embedding_figure([("mixed", sets, "")], tmp_path / "mixed.png")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ caption


def test_uniformity_caption():
    values = {"ground": -0.93, "satellite": -2.76, "all": -1.92}
    assert uniformity_caption(values) == "L_uniform ground -0.93 · satellite -2.76 · all -1.92"
    assert uniformity_caption({"all": -1.5, "ground": -1.081}) == "L_uniform ground -1.08 · all -1.50"
    assert uniformity_caption({"satellite": -2.5}) == "L_uniform satellite -2.50"
    with pytest.raises(ValueError, match="values"):
        uniformity_caption({})
