"""Embeddings in R^2, on S^1 and as a density of angles (thesis section 3.3, figures 4.3 and 4.4).

The thesis follows Wang and Isola (2020) to show how uniform a model's features are:
the validation embeddings of both views are reduced to R^2 by one t-SNE, the 2-D
points are L2-normalised onto the unit circle S^1, and the angles arctan2(y, x) of
those points are smoothed by a von Mises-Fisher kernel density estimate. One row of
three panels per model state; the uniformity values of eq 3.5
(:func:`cvbench.metrics.uniformity_report`) go in the row's caption.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import is_color_like, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from scipy.special import i0e
from sklearn.manifold import TSNE

from .figure_files import DEFAULT_DPI, figure_format, save_figure

COLUMN_TITLES = ("t-SNE in R²", "on S¹", "vMF density of angles")
GRID_SIZE = 512
_ROW_SIZE = (12.0, 3.8)  # inches for one row of three panels
_ALL_COLOR = "black"  # the thesis' overall curve (section 4.5.2, "the black curve")
_CAPTION_KEYS = ("ground", "satellite", "all")
# Barnes-Hut is slower than the exact O(n^2) gradient up to about this many points,
# and erratically slow (seconds to a minute) for a handful of points.
_EXACT_TSNE_MAX = 1000


@dataclass(frozen=True)
class PointSet:
    """Embeddings drawn in one colour, e.g. the ground views of one city (figure 4.4)."""

    label: str  # legend entry, e.g. "ground", "satellite · Chicago"
    points: np.ndarray  # (n, D) embeddings, any float dtype, n >= 1
    color: str | None = None  # a matplotlib colour; None takes the tab10 colour of the set's index


# ------------------------------------------------------------------ computation


def tsne(points: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """(n, 2) t-SNE of (n, D) points (thesis section 3.3); deterministic for a seed.

    PCA initialisation (stable layouts across seeds); the exact gradient up to
    1000 points, Barnes-Hut above (the thesis' validation sets); the perplexity is clipped to
    [1, (n - 1) / 3] so that small sets are valid (scikit-learn needs it below n, and
    about 3 * perplexity neighbours to calibrate each point). The result is centred at
    the origin: the t-SNE objective does not see translations, and the projection onto
    S^1 of the figure needs the origin to mean "the middle of the points".
    Points that are all identical (a collapsed encoder) map to the origin, since
    scikit-learn's PCA initialisation cannot scale a zero spread.
    """
    x = _as_matrix(points, "points")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"points: t-SNE needs at least 2 rows, got {n}")
    _check_positive(perplexity, "perplexity")
    if np.ptp(x, axis=0).max() == 0:
        return np.zeros((n, 2))
    if x.shape[1] < 2:
        # PCA initialisation needs two input dimensions; a zero column changes no distance.
        x = np.hstack([x, np.zeros((n, 2 - x.shape[1]))])
    clipped = max(1.0, min(float(perplexity), (n - 1) / 3))
    method = "exact" if n <= _EXACT_TSNE_MAX else "barnes_hut"
    model = TSNE(n_components=2, perplexity=clipped, init="pca", learning_rate="auto", method=method,
                 random_state=seed)
    embedded = model.fit_transform(x).astype(np.float64)
    return embedded - embedded.mean(axis=0)


def vmf_density(angles: np.ndarray, grid: np.ndarray, kappa: float = 10.0) -> np.ndarray:
    """Von Mises-Fisher kernel density of angles on the circle, evaluated at ``grid`` (figures 4.3/4.4).

    ``mean_i exp(kappa cos(grid - angles_i)) / (2 pi I0(kappa))``: each kernel is the
    von Mises density with concentration ``kappa``, so the estimate integrates to 1 over
    any period. Written as ``exp(kappa (cos d - 1)) / (2 pi i0e(kappa))`` with the
    exponentially scaled Bessel function, which stays finite for large kappa.
    """
    a = _as_vector(angles, "angles")
    g = _as_vector(grid, "grid", allow_empty=True)
    _check_positive(kappa, "kappa")
    kernels = np.exp(kappa * (np.cos(g[:, None] - a[None, :]) - 1.0))
    return kernels.mean(axis=1) / (2.0 * math.pi * i0e(kappa))


def uniformity_caption(values: dict[str, float]) -> str:
    """Caption text of the uniformity values of eq 3.5, as under figures 4.3/4.4.

    ``{'ground': -0.93, 'satellite': -2.76, 'all': -1.92}`` gives
    ``'L_uniform ground -0.93 · satellite -2.76 · all -1.92'``; ground, satellite and
    all come in that order when present, other keys follow in the dict's order.
    """
    if not values:
        raise ValueError("values must hold at least one uniformity value")
    keys = [k for k in _CAPTION_KEYS if k in values] + [k for k in values if k not in _CAPTION_KEYS]
    return "L_uniform " + " · ".join(f"{key} {float(values[key]):.2f}" for key in keys)


# ------------------------------------------------------------------ drawing


def embedding_panels(axes: Sequence[Axes], sets: Sequence[PointSet], seed: int = 0, kappa: float = 10.0,
                     title: str = "", caption: str = "") -> None:
    """Draw one row of figure 4.3/4.4 into three Axes: t-SNE, the points on S^1, the vMF density of angles.

    t-SNE runs once on all sets stacked, so the views share one map as in the thesis,
    and is split back by set. The density panel has one curve per set in the set's
    colour and, for two sets or more, a dashed black curve over all points (the
    thesis' overall curve). ``title`` goes above the first panel, ``caption`` under
    the middle one.
    """
    if len(axes) != 3:
        raise ValueError(f"axes must be three Axes, got {len(axes)}")
    arrays = _checked_sets(sets)
    colors = _colors(sets)
    xy = tsne(np.vstack(arrays), seed=seed)
    angles = np.arctan2(xy[:, 1], xy[:, 0])
    bounds = np.cumsum([0] + [len(a) for a in arrays])
    parts = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    grid = np.linspace(-math.pi, math.pi, GRID_SIZE, endpoint=False)

    _draw_plane(axes[0], [xy[p] for p in parts], colors, sets)
    _draw_circle(axes[1], [angles[p] for p in parts], colors)
    _draw_density(axes[2], [angles[p] for p in parts], colors, sets, grid, kappa)
    if title:
        axes[0].set_title(title, loc="left", fontweight="bold")
    if caption:
        axes[1].set_xlabel(caption)


def embedding_figure(rows: Sequence[tuple[str, Sequence[PointSet], str]], out: Path | str,
                     seed: int = 0, kappa: float = 10.0, *, dpi: int = DEFAULT_DPI) -> Path:
    """Figure 4.3/4.4: one row of three panels per (title, sets, caption), written atomically (PNG, PDF or
    SVG by the extension of ``out``) at ``dpi``.

    Each row is drawn by :func:`embedding_panels` with its own t-SNE (rows are different
    model states, so their maps are not comparable point by point anyway).
    """
    if not rows:
        raise ValueError("rows must hold at least one (title, sets, caption) row")
    for i, row in enumerate(rows):
        if len(row) != 3:
            raise ValueError(f"rows[{i}] must be (title, sets, caption), got {len(row)} items")
    out = Path(out)
    figure_format(out)  # a wrong name fails before the t-SNE rather than after
    width, height = _ROW_SIZE
    fig = Figure(figsize=(width, height * len(rows) + 0.4), layout="constrained")
    grid = fig.subplots(len(rows), 3, squeeze=False)
    for axes, (title, sets, caption) in zip(grid, rows):
        embedding_panels(axes, sets, seed=seed, kappa=kappa, title=title, caption=caption)
    for ax, name in zip(grid[0], COLUMN_TITLES):
        _column_title(ax, name)
    return save_figure(fig, out, dpi)


def _draw_plane(ax: Axes, parts: list[np.ndarray], colors: list[str], sets: Sequence[PointSet]) -> None:
    """Panel 1: the t-SNE points; their coordinates mean nothing, so no ticks."""
    for xy, color, s in zip(parts, colors, sets):
        ax.scatter(xy[:, 0], xy[:, 1], s=_marker_size(xy), color=color, alpha=0.7, linewidths=0, label=s.label)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_circle(ax: Axes, parts: list[np.ndarray], colors: list[str]) -> None:
    """Panel 2: the t-SNE points L2-normalised onto S^1 (for the origin, arctan2 gives angle 0)."""
    ax.add_patch(Circle((0.0, 0.0), 1.0, fill=False, color="0.6", linewidth=1.0))
    for theta, color in zip(parts, colors):
        ax.scatter(np.cos(theta), np.sin(theta), s=_marker_size(theta), color=color, alpha=0.5, linewidths=0)
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_density(ax: Axes, parts: list[np.ndarray], colors: list[str], sets: Sequence[PointSet],
                  grid: np.ndarray, kappa: float) -> None:
    """Panel 3: a vMF kernel density of the angles per set, plus all points together."""
    for theta, color, s in zip(parts, colors, sets):
        ax.plot(grid, vmf_density(theta, grid, kappa), color=color, linewidth=1.5, label=s.label)
    if len(parts) > 1:
        everything = np.concatenate(parts)
        ax.plot(grid, vmf_density(everything, grid, kappa), color=_ALL_COLOR, linestyle="--",
                linewidth=1.2, label="all")
    ax.set_xlim(-math.pi, math.pi)
    ax.set_ylim(bottom=0.0)
    ax.set_xticks([-math.pi, -math.pi / 2, 0.0, math.pi / 2, math.pi], ["-π", "-π/2", "0", "π/2", "π"])
    ax.set_xlabel("angle")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize="small", frameon=False)


def _column_title(ax: Axes, name: str) -> None:
    """A column heading above the top row, clear of the row title that sits at the usual title place."""
    ax.annotate(name, xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, 22), textcoords="offset points",
                ha="center", va="bottom", fontsize="large")


def _marker_size(points: np.ndarray) -> float:
    """Smaller markers for many points, so thousands of validation embeddings stay readable."""
    return float(np.clip(400.0 / math.sqrt(len(points)), 2.0, 30.0))


# ------------------------------------------------------------------ validation


def _checked_sets(sets: Sequence[PointSet]) -> list[np.ndarray]:
    """The sets' points as float64 matrices; one dimension D for the row, finite values."""
    if len(sets) == 0:
        raise ValueError("sets must hold at least one PointSet")
    arrays = []
    for s in sets:
        if not isinstance(s, PointSet):
            raise ValueError(f"sets must hold PointSet, got {type(s).__name__}")
        arrays.append(_as_matrix(s.points, f"points of set {s.label!r}"))
    first = sets[0]
    for s, a in zip(sets, arrays):
        if a.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"points of set {s.label!r} have dimension {a.shape[1]}, "
                             f"but set {first.label!r} has {arrays[0].shape[1]}")
    return arrays


def _colors(sets: Sequence[PointSet]) -> list[str]:
    """Each set's colour: its own, else tab10 by its index in the row."""
    palette = colormaps["tab10"]
    colors = []
    for i, s in enumerate(sets):
        if s.color is None:
            colors.append(to_hex(palette(i % palette.N)))
        elif is_color_like(s.color):
            colors.append(s.color)
        else:
            raise ValueError(f"color of set {s.label!r} is not a matplotlib colour: {s.color!r}")
    return colors


def _as_matrix(points: np.ndarray, name: str) -> np.ndarray:
    """``points`` as a finite (n, D) float64 array with n >= 1 and D >= 1."""
    x = np.asarray(points)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be an (n, D) array with n, D >= 1, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or inf")
    return x


def _as_vector(values: np.ndarray, name: str, allow_empty: bool = False) -> np.ndarray:
    """``values`` as a finite 1-D float64 array."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contain NaN or inf")
    if v.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return v


def _check_positive(value: float, name: str) -> None:
    """A finite real number > 0 (numpy scalars included, bools not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
