"""Training curves from ``metrics.csv``: loss, R@1 and uniformity per epoch (thesis figure 4.5).

Figure 4.5 follows L_uniform-all on the validation set along the fine-tuning
epochs for several uniformity-loss weights alpha; here every run gets one line
style and the three uniformity kinds (eq 3.6-3.8: ground, satellite, all)
one colour each, next to the fine-tuning loss and R@1 of the same runs.
"""

from __future__ import annotations

from itertools import cycle
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .figure_files import DEFAULT_DPI, save_figure

UNIFORMITY_COLOURS = {"ground": "red", "satellite": "blue", "all": "black"}
LINE_STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P"]


def build_training_curves_figure(runs: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """Three panels -- fine-tuning loss, R@1, uniformity (ground, satellite, all) -- against epoch, one line
    style per run (label = the run's name), read from metrics.csv frames. Missing columns or all-NaN columns
    are skipped in that panel (e.g. a run without evaluation); epochs without a value are not drawn as gaps
    but as lines through the evaluated epochs. A run list that is empty -> ValueError.

    Each run also has a marker, drawn on the epochs that have a value, so the
    evaluated epochs stay visible where a line joins them. Loss and R@1 lines
    take the default colour cycle (one colour per run) besides the style. The
    R@1 axis starts at 0, so that the height of a curve reads as its recall.
    """
    runs = [_check_run(i, run) for i, run in enumerate(runs)]
    if not runs:
        raise ValueError("runs is empty: nothing to draw")
    fig = Figure(figsize=(16, 4.4), layout="constrained")
    # A fourth, empty column holds the uniformity legends so that they never hide a curve.
    loss_ax, recall_ax, uniformity_ax, legend_ax = fig.subplots(1, 4, width_ratios=[1, 1, 1, 0.22])
    recall_ax.sharex(loss_ax)
    uniformity_ax.sharex(loss_ax)
    with_uniformity = []
    for i, ((name, frame), style, marker) in enumerate(zip(runs, cycle(LINE_STYLES), cycle(MARKERS))):
        colour = f"C{i % 10}"
        _plot(loss_ax, frame, "loss", color=colour, linestyle=style, marker=marker, label=name)
        _plot(recall_ax, frame, "R@1", color=colour, linestyle=style, marker=marker, label=name)
        drawn = [_plot(uniformity_ax, frame, f"uniformity_{kind}", color=kind_colour, linestyle=style, marker=marker)
                 for kind, kind_colour in UNIFORMITY_COLOURS.items()]
        if any(drawn):
            with_uniformity.append((name, style, marker))
    _finish(loss_ax, "fine-tuning loss", "loss")
    _finish(recall_ax, "R@1 (validation)", "R@1 (%)")
    recall_ax.set_ylim(bottom=0.0)
    _finish(uniformity_ax, "uniformity (eq 3.6-3.8, validation)", "uniformity (lower = more uniform)")
    _uniformity_legends(legend_ax, bool(uniformity_ax.lines), with_uniformity)
    return fig


def training_curves_figure(runs: Sequence[tuple[str, pd.DataFrame]], out: Path | str, *,
                           dpi: int = DEFAULT_DPI) -> Path:
    """Write :func:`build_training_curves_figure` to ``out`` (PNG, PDF or SVG by its extension) at ``dpi``."""
    return save_figure(build_training_curves_figure(runs), out, dpi)


def _check_run(index: int, run: tuple[str, pd.DataFrame]) -> tuple[str, pd.DataFrame]:
    try:
        name, frame = run
    except (TypeError, ValueError):
        raise ValueError(f"runs[{index}] must be a (name, metrics frame) pair") from None
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"runs[{index}] ({name}): the metrics must be a pandas DataFrame, got {type(frame).__name__}")
    if "epoch" not in frame.columns:
        raise ValueError(f"runs[{index}] ({name}): the metrics frame has no 'epoch' column")
    return str(name), frame


def _series(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and values of ``column`` where it has a value, in epoch order (empty when missing)."""
    if column not in frame.columns:
        return np.empty(0), np.empty(0)
    pairs = pd.DataFrame({"epoch": pd.to_numeric(frame["epoch"], errors="coerce"),
                          "value": pd.to_numeric(frame[column], errors="coerce")})
    pairs = pairs.replace([np.inf, -np.inf], np.nan).dropna().sort_values("epoch", kind="stable")
    return pairs["epoch"].to_numpy(), pairs["value"].to_numpy()


def _plot(ax: Axes, frame: pd.DataFrame, column: str, **style) -> bool:
    """Draw ``column`` through the epochs that have a value; False when there is none."""
    epochs, values = _series(frame, column)
    if epochs.size:
        ax.plot(epochs, values, markersize=4, linewidth=1.5, **style)
    return bool(epochs.size)


def _finish(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if not ax.lines:
        ax.text(0.5, 0.5, "no values in these runs", transform=ax.transAxes, ha="center", va="center",
                color="grey")
    elif ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _uniformity_legends(ax: Axes, drawn: bool, runs: list[tuple[str, object, str]]) -> None:
    """Two legends in ``ax``: colour = uniformity kind, line style and marker = run (runs with uniformity)."""
    ax.set_axis_off()
    if not drawn:
        return
    kinds = [Line2D([], [], color=c, label=kind) for kind, c in UNIFORMITY_COLOURS.items()]
    styles = [Line2D([], [], color="grey", linestyle=s, marker=m, markersize=4, label=name) for name, s, m in runs]
    ax.add_artist(ax.legend(handles=kinds, loc="upper left", fontsize="small", title="uniformity"))
    ax.legend(handles=styles, loc="lower left", fontsize="small", title="run")
