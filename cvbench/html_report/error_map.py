"""A map of a run's query positions coloured by how far retrieval placed each one (``predictions_<split>.csv``).

``cvbench eval RUN --predictions K`` writes, per query, its position
(``query_lat``/``query_lon`` in degrees, or ``query_x``/``query_y`` in metres)
and ``error_m``, the distance from it to the top-1 tile. The map is a plain
matplotlib scatter of those positions on their own axes, with a colour bar in
metres: no basemap, so nothing is fetched. A run whose record has localisation
metrics but no predictions file gets the command that writes one instead.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from .elements import command, paragraph, text
from .figures import image

ERROR = "error_m"
TITLE_CHARACTERS = 46  # a title line that fits above the axes at 12 pt; a run folder's name is often longer
AXES = {("query_lon", "query_lat"): ("longitude (°)", "latitude (°)"),
        ("query_x", "query_y"): ("x, east (m)", "y, north (m)")}
LOCALISATION_METRIC = "error_median_m"  # in a record's metrics where its items carry coordinates


def has_coordinates(record: dict[str, Any]) -> bool:
    """Whether the run's items carried positions (its evaluation measured the error in metres)."""
    return LOCALISATION_METRIC in (record.get("metrics") or {})


def prediction_files(run_dir: Path) -> list[Path]:
    """Every ``predictions_<split>.csv`` of the run, by name."""
    return sorted(run_dir.glob("predictions_*.csv"))


def position_columns(frame: pd.DataFrame) -> tuple[str, str] | None:
    """The (x, y) columns of the queries' positions: longitude and latitude, or metres east and north."""
    return next((pair for pair in AXES if all(column in frame for column in pair)), None)


def error_map_png(frame: pd.DataFrame, title: str) -> bytes:
    """The scatter of query positions coloured by ``error_m`` as PNG bytes (``frame`` has both)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    x, y = position_columns(frame)
    figure = Figure(figsize=(6.4, 5.2), dpi=100)
    axes = figure.subplots()
    points = axes.scatter(frame[x], frame[y], c=frame[ERROR], cmap="viridis", s=14, edgecolors="none")
    figure.colorbar(points, ax=axes, label="localisation error of the top-1 tile (m)")
    x_label, y_label = AXES[(x, y)]
    # wrapped (at the name's dashes first): one long line, centred on the axes, ran off the figure's left edge
    axes.set(xlabel=x_label, ylabel=y_label, title=textwrap.fill(title, TITLE_CHARACTERS))
    if x == "query_x":
        axes.set_aspect("equal", adjustable="datalim")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def map_html(run_dir: Path, record: dict[str, Any]) -> str:
    """The run's error maps (one per predictions file), or a line saying what stands in their way."""
    files = prediction_files(run_dir)
    if not files:
        if not has_coordinates(record):
            return ""
        return paragraph("This run's queries have coordinates; a map of their errors in metres needs the "
                         "predictions file, which this command writes:") + \
            f'<p class="note">{command(f"cvbench eval {run_dir} --predictions 1")}</p>'
    blocks = []
    for path in files:
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            blocks.append(paragraph(f"{path}: not a readable predictions file ({exc}); no map."))
            continue
        if position_columns(frame) is None or ERROR not in frame:
            blocks.append(f'<p class="note">{text(path.name)} holds no query positions and {ERROR} (written before '
                          f"they were recorded, or the dataset has no coordinates); "
                          f'{command(f"cvbench eval {run_dir} --predictions 1")} writes them.</p>')
            continue
        frame = frame.dropna(subset=[*position_columns(frame), ERROR])
        split = path.stem.removeprefix("predictions_")
        title = f"{run_dir.name}: {split} queries"
        png = error_map_png(frame, title)
        blocks.append(image(png, "image/png", f"{path.name}: {len(frame)} queries coloured by the error of their "
                                              f"top-1 tile (median {frame[ERROR].median():.1f} m)"))
    return "".join(blocks)
