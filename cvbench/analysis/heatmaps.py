"""Localization heatmaps (thesis appendix 6.3, figure 6.1).

For one ground query, every reference tile is drawn where it lies on the
ground, shaded by its cosine similarity to the query. A model that has learnt
geography shows high similarity around the query's true location even where
the top-1 tile is wrong; the thesis uses this to compare exp 2 and exp 5.

The thesis draws the query as a cross of blue dotted lines over red squares;
here the query is a red star over a viridis colour scale (a perceptually
uniform map reads better than depth of red), the true tile is outlined and
the top-1 tile is circled so that a miss is visible at a glance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle
from scipy.spatial import cKDTree

from ..atomic import atomic_path

EARTH_RADIUS_M = 6371008.8  # IUGG mean earth radius
CMAP = "viridis"
PANEL_INCHES = (4.2, 3.6)


@dataclass(frozen=True)
class QueryMap:
    """One query's panel: the references drawn, their similarity to the query and the truth.

    Arrays are converted to float64 and checked on construction, so a wrong
    shape fails where the map is made rather than inside the plotting code.
    """

    title: str
    reference_xy: np.ndarray
    scores: np.ndarray
    true_xy: tuple[float, float]
    positive: int
    tile_metres: float | None = None

    def __post_init__(self) -> None:
        xy = np.asarray(self.reference_xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
            raise ValueError(f"reference_xy must have shape (M, 2) with M >= 1, got {xy.shape}")
        if not np.isfinite(xy).all():
            raise ValueError("reference_xy must be finite")
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.shape != (xy.shape[0],):
            raise ValueError(f"scores must have shape ({xy.shape[0]},) to match reference_xy, got {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError("scores must be finite")
        true_xy = tuple(float(v) for v in np.asarray(self.true_xy, dtype=np.float64).reshape(-1))
        if len(true_xy) != 2 or not all(math.isfinite(v) for v in true_xy):
            raise ValueError(f"true_xy must be two finite numbers, got {self.true_xy!r}")
        if isinstance(self.positive, bool) or not isinstance(self.positive, (int, np.integer)):
            raise ValueError(f"positive must be an integer index, got {self.positive!r}")
        if not 0 <= int(self.positive) < xy.shape[0]:
            raise ValueError(f"positive must be in [0, {xy.shape[0]}), got {self.positive}")
        if self.tile_metres is not None and not (math.isfinite(self.tile_metres) and self.tile_metres > 0):
            raise ValueError(f"tile_metres must be a positive number or None, got {self.tile_metres!r}")
        object.__setattr__(self, "reference_xy", xy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "true_xy", true_xy)
        object.__setattr__(self, "positive", int(self.positive))


def local_metres(lat: np.ndarray, lon: np.ndarray, origin: tuple[float, float] | None = None) -> np.ndarray:
    """(N, 2) x east / y north in metres from (lat, lon) degrees, equirectangular around `origin` (default: the mean),
    earth radius 6371008.8 m. Accurate to well under 1% over a city.

    x = R * dlon * cos(lat0), y = R * dlat (radians); the error grows with the
    distance from ``origin`` (about 0.1% of x at 10 km at mid latitudes).
    """
    lat = np.asarray(lat, dtype=np.float64).reshape(-1)
    lon = np.asarray(lon, dtype=np.float64).reshape(-1)
    if lon.shape != lat.shape:
        raise ValueError(f"lon must have the same length as lat: {lon.shape[0]} vs {lat.shape[0]}")
    if lat.size == 0 and origin is None:
        raise ValueError("lat is empty and no origin is given")
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise ValueError("lat and lon must be finite")
    if np.abs(lat).max(initial=0.0) > 90:
        raise ValueError("lat must be in [-90, 90] degrees")
    lat0, lon0 = (float(lat.mean()), float(lon.mean())) if origin is None else map(float, origin)
    # Wrap the longitude difference so a city on the antimeridian stays contiguous.
    dlon = (lon - lon0 + 180.0) % 360.0 - 180.0
    x = EARTH_RADIUS_M * np.radians(dlon) * math.cos(math.radians(lat0))
    y = EARTH_RADIUS_M * np.radians(lat - lat0)
    return np.stack([x, y], axis=1)


def estimate_tile_metres(reference_xy: np.ndarray) -> float:
    """Median distance from each reference to its nearest distinct neighbour: the tile spacing of a grid."""
    xy = np.asarray(reference_xy, dtype=np.float64)
    if xy.shape[0] < 2:
        raise ValueError("tile_metres: cannot be estimated from a single reference; pass it")
    distances, _ = cKDTree(xy).query(xy, k=2)
    nearest = distances[:, 1]
    nearest = nearest[nearest > 0]
    if nearest.size == 0:
        raise ValueError("tile_metres: cannot be estimated, all references share one location; pass it")
    return float(np.median(nearest))


def localization_figure(maps: Sequence[QueryMap], out: Path | str, columns: int = 4, *, dpi: int = 120) -> Path:
    """Write one localization heatmap panel per query (thesis appendix 6.3) in a grid of `columns`.

    Each panel has its own colour normalisation (its scores' min to max) and
    its own colorbar, because similarity ranges differ between queries and a
    shared scale would flatten most panels. Tiles are squares of
    ``tile_metres`` in data units, axes are in metres with equal aspect.
    """
    maps = list(maps)
    if not maps:
        raise ValueError("maps is empty: nothing to draw")
    if not all(isinstance(m, QueryMap) for m in maps):
        raise ValueError("maps must hold QueryMap objects")
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    ncols = min(int(columns), len(maps))
    nrows = math.ceil(len(maps) / ncols)
    fig = Figure(figsize=(PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * nrows + 0.4), layout="constrained")
    for i, query_map in enumerate(maps):
        _draw_panel(fig, fig.add_subplot(nrows, ncols, i + 1), query_map)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    return _save(fig, out, dpi)


def _draw_panel(fig: Figure, ax: Axes, query_map: QueryMap) -> None:
    xy, scores = query_map.reference_xy, query_map.scores
    side = query_map.tile_metres or estimate_tile_metres(xy)
    tiles = PatchCollection([Rectangle((x - side / 2, y - side / 2), side, side) for x, y in xy],
                            cmap=CMAP, norm=_norm(scores), edgecolor="none")
    tiles.set_array(scores)
    ax.add_collection(tiles)
    px, py = xy[query_map.positive]
    ax.add_patch(Rectangle((px - side / 2, py - side / 2), side, side, fill=False, edgecolor="red", linewidth=1.5))
    tx, ty = xy[int(np.argmax(scores))]
    ax.add_patch(Circle((tx, ty), side * 0.35, fill=False, edgecolor="white", linewidth=1.5))
    ax.plot(*query_map.true_xy, marker="*", color="red", markersize=13, markeredgecolor="white", linestyle="none")
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_title(query_map.title, fontsize="medium")
    ax.set_xlabel("x east (m)")
    ax.set_ylabel("y north (m)")
    fig.colorbar(tiles, ax=ax, label="cosine similarity", shrink=0.9)


def _norm(scores: np.ndarray) -> Normalize:
    low, high = float(scores.min()), float(scores.max())
    if high <= low:  # all tiles equally similar: centre them on the scale instead of a singular one
        low, high = low - 0.5, high + 0.5
    return Normalize(vmin=low, vmax=high)


def _legend_handles() -> list[Line2D]:
    return [
        Line2D([], [], marker="*", color="red", markeredgecolor="white", markersize=12, linestyle="none",
               label="query location"),
        Line2D([], [], marker="s", color="red", fillstyle="none", markersize=10, linestyle="none",
               label="true tile"),
        Line2D([], [], marker="o", color="grey", markerfacecolor="none", markeredgecolor="grey", markersize=10,
               linestyle="none", label="top-1 tile (white circle)"),
    ]


def _save(fig: Figure, out: Path | str, dpi: int) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return out
