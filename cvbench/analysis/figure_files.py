"""Writing a figure to a file: the formats a paper takes (PNG, PDF, SVG) and the resolution.

The format is the one the file's extension names, so a caller chooses it by
naming the file (``heatmaps.pdf``). Every file goes through the project's
atomic writer: a reader, or an analysis killed half-way, sees the old figure
or the new one, never a truncated file. No matplotlib import at module level,
so the CLI can list the formats without paying for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_FORMATS = ("png", "pdf", "svg")
DEFAULT_FORMAT = "png"
DEFAULT_DPI = 120
DPI_RANGE = (20, 1200)  # below, text is unreadable; above, a 4-panel PNG takes gigabytes to draw
# Vector formats stamp the time of writing by default; without it the same figure gives the same bytes.
_NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": None}


def figure_format(path: str | Path) -> str:
    """The format a figure file's extension names ("png", "pdf", "svg"); ValueError for any other."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"{path}: a figure file ends in one of .{', .'.join(FIGURE_FORMATS)}, "
                         f"got {Path(path).suffix or 'no extension'}")
    return fmt


def check_dpi(dpi: int) -> int:
    """``dpi`` when it is a whole number in DPI_RANGE; ValueError otherwise."""
    low, high = DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not low <= dpi <= high:
        raise ValueError(f"dpi must be a whole number from {low} to {high}, got {dpi!r}")
    return dpi


def save_figure(fig: Figure, out: str | Path, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``fig`` to ``out`` atomically, in the format of its extension, at ``dpi`` (for PDF and SVG: the
    resolution of embedded images); returns ``out``. Nothing is written when the name or dpi is wrong."""
    out = Path(out)
    fmt = figure_format(out)
    check_dpi(dpi)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_NO_DATE[fmt])
    return out
