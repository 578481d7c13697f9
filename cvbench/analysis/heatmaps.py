"""Localization heatmaps (thesis appendix 6.3, figure 6.1).

For one ground query, every reference tile is drawn where it lies on the
ground, shaded by its cosine similarity to the query. A model that has learnt
geography shows high similarity around the query's true location even where
the top-1 tile is wrong; the thesis uses this to compare exp 2 and exp 5.

The thesis draws the query as a cross of blue dotted lines over red squares;
here the query is a red star over a viridis colour scale (a perceptually
uniform map reads better than depth of red), the true tile is framed by a
red square and the top-1 tile ringed in white, so that a miss is visible at
a glance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy.spatial import cKDTree

from .figure_files import DEFAULT_DPI, save_figure

EARTH_RADIUS_M = 6371008.8  # IUGG mean earth radius
CMAP = "viridis"
PANEL_INCHES = (4.2, 3.6)
# Sizes in points, not metres, so that a marker stays visible however densely the tiles lie; an outline
# of the opposite brightness keeps each one visible on the dark and the bright end of viridis alike.
_DARK_OUTLINE = [patheffects.withStroke(linewidth=4.5, foreground="black")]
_LIGHT_OUTLINE = [patheffects.withStroke(linewidth=4.5, foreground="white")]
MARKERS = {
    "query location": dict(marker="*", markersize=11, color="red", markeredgecolor="white", markeredgewidth=1.0,
                           zorder=6),
    "true tile": dict(marker="s", markersize=14, markerfacecolor="none", markeredgecolor="red", markeredgewidth=2.0,
                      path_effects=_LIGHT_OUTLINE, zorder=5),
    "top-1 tile": dict(marker="o", markersize=21, markerfacecolor="none", markeredgecolor="white",
                       markeredgewidth=2.0, path_effects=_DARK_OUTLINE, zorder=4),
}


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


def build_localization_figure(maps: Sequence[QueryMap], columns: int = 4, caption: str = "") -> Figure:
    """One localization heatmap panel per query (thesis appendix 6.3) in a grid of `columns`, as a Figure.

    Each panel has its own colour normalisation (its scores' min to max) and
    its own colorbar, because similarity ranges differ between queries and a
    shared scale would flatten most panels. Tiles are squares of
    ``tile_metres`` in data units, axes are in metres with equal aspect; the
    axes keep their whole box (the data limits give way instead), so a
    colour bar never reaches above its panel into the title. The query, the
    true tile and the top-1 tile are markers of a fixed size in points, drawn
    over the tiles with an outline that shows on both ends of the colour
    scale, and named in a legend; ``caption`` goes under the figure.
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
    fig = Figure(figsize=(PANEL_INCHES[0] * ncols, PANEL_INCHES[1] * nrows + 0.7), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(len(maps))]
    for ax, query_map in zip(axes, maps):
        _draw_panel(fig, ax, query_map)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3, fontsize="small",
               frameon=False)
    if caption:
        fig.supxlabel(caption, fontsize="small")
    return fig


def localization_figure(maps: Sequence[QueryMap], out: Path | str, columns: int = 4, *, caption: str = "",
                        dpi: int = DEFAULT_DPI) -> Path:
    """Write :func:`build_localization_figure` to ``out`` (PNG, PDF or SVG by its extension) at ``dpi``."""
    return save_figure(build_localization_figure(maps, columns, caption), out, dpi)


def rank_caption(tile_counts: Sequence[int]) -> str:
    """What a panel title's "true tile r/N" means, for panels that drew ``tile_counts`` tiles each.

    ``[400, 400]`` gives "true tile r/400: rank r of the true tile among the 400 gallery tiles nearest
    the query, ..."; counts that differ (a small city) are named as a range.
    """
    counts = sorted(set(int(n) for n in tile_counts))
    if not counts:
        raise ValueError("tile_counts is empty: no panel to caption")
    n = str(counts[0]) if len(counts) == 1 else "N"
    among = n if len(counts) == 1 else f"N ({counts[0]} to {counts[-1]})"
    return (f"true tile r/{n}: rank r of the true tile among the {among} gallery tiles nearest the query, "
            "by cosine similarity (1 = retrieved first)")


def _draw_panel(fig: Figure, ax: Axes, query_map: QueryMap) -> None:
    xy, scores = query_map.reference_xy, query_map.scores
    side = query_map.tile_metres or estimate_tile_metres(xy)
    tiles = PatchCollection([Rectangle((x - side / 2, y - side / 2), side, side) for x, y in xy],
                            cmap=CMAP, norm=_norm(scores), edgecolor="none", zorder=1)
    tiles.set_array(scores)
    ax.add_collection(tiles)
    for name, (x, y) in (("top-1 tile", xy[int(np.argmax(scores))]), ("true tile", xy[query_map.positive]),
                         ("query location", query_map.true_xy)):
        ax.plot([x], [y], linestyle="none", label=name, **MARKERS[name])
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(query_map.title, fontsize="medium")
    ax.set_xlabel("x east (m)")
    ax.set_ylabel("y north (m)")
    fig.colorbar(tiles, ax=ax, label="cosine similarity", shrink=0.9)


def _norm(scores: np.ndarray) -> Normalize:
    low, high = float(scores.min()), float(scores.max())
    if high <= low:  # all tiles equally similar: centre them on the scale instead of a singular one
        low, high = low - 0.5, high + 0.5
    return Normalize(vmin=low, vmax=high)
