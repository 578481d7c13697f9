"""The backbone's last feature map over its images (thesis appendix 6.4, figure 6.2).

The last layer output of f_theta (ground) and f_xi (satellite) is reduced to
one activation per location and laid over the image as a heatmap, to see
which parts of an image the network responds to (in the thesis: mostly the
road structure, in both views).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from scipy.ndimage import zoom

from .figure_files import DEFAULT_DPI, save_figure

# Perceptually uniform, and dark-to-light so that "more" reads as brighter in grey print too (jet is neither).
OVERLAY_CMAP = "magma"
PANEL_HEIGHT_IN = 2.0
MAX_ROW_WIDTH_IN = 15.0  # rows of many panoramas are shrunk to this width rather than made ever wider
GAP_IN = 0.1
TITLE_IN = 0.35
MARGIN_IN = 0.15
COLOURBAR_IN = (0.25, 0.15, 0.75)  # gap before the colour bar, its width, room for its ticks and label


def activation_map(features: np.ndarray) -> np.ndarray:
    """(C, h, w) feature map -> (h, w) in [0, 1]: the mean over channels of the absolute activations,
    min-max normalised (all-constant -> zeros).

    Absolute values because after a linear last layer (no ReLU) a strongly
    negative activation is as much a response as a positive one.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 3 or 0 in features.shape:
        raise ValueError(f"features must have shape (C, h, w) with no empty axis, got {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features must be finite")
    energy = np.abs(features).mean(axis=0)
    low, high = energy.min(), energy.max()
    if high <= low:
        return np.zeros_like(energy)
    return (energy - low) / (high - low)


def build_feature_map_figure(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], alpha: float = 0.5) -> Figure:
    """One row per (title, images (B, H, W, 3) uint8, features (B, C, h, w) float): each image with its
    activation_map upsampled (bilinear) to the image size and overlaid in OVERLAY_CMAP with `alpha`, and one
    colour bar for the figure. Panoramas are wide: each panel is sized by the image aspect ratio. B may
    differ between rows.

    Panels are placed by hand (in inches) rather than on a shared grid so that
    a row of 2:1 panoramas and a row of square tiles each keep their shape;
    each map is normalised on its own (activation_map), so colours compare
    locations within an image, not images with each other, and the colour bar
    says so. With ``alpha`` 0 nothing is overlaid and there is no colour bar.
    """
    rows = [_check_row(i, row) for i, row in enumerate(rows)]
    if not rows:
        raise ValueError("rows is empty: nothing to draw")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    sizes = [_panel_size(images) for _, images, _ in rows]
    row_widths = [len(images) * w + (len(images) - 1) * GAP_IN for (_, images, _), (w, _) in zip(rows, sizes)]
    colourbar_w = sum(COLOURBAR_IN) if alpha > 0 else 0.0
    fig_w = max(row_widths) + 2 * MARGIN_IN + colourbar_w
    fig_h = sum(h + TITLE_IN for _, h in sizes) + 2 * MARGIN_IN
    fig = Figure(figsize=(fig_w, fig_h))
    top = fig_h - MARGIN_IN
    for (title, images, features), (panel_w, panel_h) in zip(rows, sizes):
        fig.text(MARGIN_IN / fig_w, (top - TITLE_IN / 2) / fig_h, title, va="center", ha="left",
                 fontsize="medium", fontweight="bold")
        bottom = top - TITLE_IN - panel_h
        for j, (image, feature) in enumerate(zip(images, features)):
            left = MARGIN_IN + j * (panel_w + GAP_IN)
            ax = fig.add_axes((left / fig_w, bottom / fig_h, panel_w / fig_w, panel_h / fig_h))
            ax.imshow(image)
            heat = _upsample(activation_map(feature), image.shape[:2])
            ax.imshow(heat, cmap=OVERLAY_CMAP, vmin=0.0, vmax=1.0, alpha=alpha)
            ax.set_axis_off()
        top = bottom
    if alpha > 0:
        _colour_bar(fig, fig_w, fig_h, left=max(row_widths) + MARGIN_IN + COLOURBAR_IN[0])
    return fig


def feature_map_figure(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], out: Path | str, alpha: float = 0.5,
                       *, dpi: int = DEFAULT_DPI) -> Path:
    """Write :func:`build_feature_map_figure` to ``out`` (PNG, PDF or SVG by its extension) at ``dpi``."""
    return save_figure(build_feature_map_figure(rows, alpha), out, dpi)


def _colour_bar(fig: Figure, fig_w: float, fig_h: float, left: float) -> None:
    """The overlay's scale, at the right over the figure's height, placed in inches as the panels are."""
    height = fig_h - 2 * MARGIN_IN - TITLE_IN
    cax = fig.add_axes((left / fig_w, MARGIN_IN / fig_h, COLOURBAR_IN[1] / fig_w, height / fig_h))
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), OVERLAY_CMAP), cax=cax, ticks=[0.0, 1.0])
    bar.ax.set_yticklabels(["min", "max"], fontsize="small")
    bar.set_label("activation, each image", fontsize="small")


def _check_row(index: int, row: tuple[str, np.ndarray, np.ndarray]) -> tuple[str, np.ndarray, np.ndarray]:
    try:
        title, images, features = row
    except (TypeError, ValueError):
        raise ValueError(f"rows[{index}] must be a (title, images, features) tuple") from None
    images = np.asarray(images)
    features = np.asarray(features)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape:
        raise ValueError(f"images of row {index} must be uint8 (B, H, W, 3) with B >= 1, "
                         f"got {images.dtype} {images.shape}")
    if features.ndim != 4 or 0 in features.shape:
        raise ValueError(f"features of row {index} must have shape (B, C, h, w), got {features.shape}")
    if features.shape[0] != images.shape[0]:
        raise ValueError(f"features of row {index} hold {features.shape[0]} maps for {images.shape[0]} images")
    return str(title), images, features


def _panel_size(images: np.ndarray) -> tuple[float, float]:
    """Panel (width, height) in inches: the image's aspect ratio, shrunk so the row fits MAX_ROW_WIDTH_IN."""
    count, height, width = images.shape[:3]
    panel_h = PANEL_HEIGHT_IN
    panel_w = panel_h * width / height
    row_w = count * panel_w + (count - 1) * GAP_IN
    if row_w > MAX_ROW_WIDTH_IN:
        scale = (MAX_ROW_WIDTH_IN - (count - 1) * GAP_IN) / (count * panel_w)
        panel_w, panel_h = panel_w * scale, panel_h * scale
    return panel_w, panel_h


def _upsample(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (h, w) map to ``size`` = (H, W), pixel centres aligned (grid_mode)."""
    factors = (size[0] / heat.shape[0], size[1] / heat.shape[1])
    # zoom's output shape is round(h * H / h) = H exactly.
    return np.clip(zoom(heat, factors, order=1, mode="nearest", grid_mode=True), 0.0, 1.0)
