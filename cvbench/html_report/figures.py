"""Figures inlined into the page as ``data:`` URIs, and the figures ``cvbench analyze`` wrote for a run.

A page that links its images breaks when it is mailed or moved; one that
carries them opens anywhere, offline. PNG and SVG are inlined as they are
(base64); a PDF figure cannot be shown by an ``<img>`` and is left out.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .elements import text

ANALYSIS = "analysis"  # cvbench analyze's folder inside a run (analyze_run's default)
MEDIA_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
ORDER = ("curves", "embeddings", "heatmaps", "feature_maps")  # training first, then what the model learned


def data_uri(data: bytes, media_type: str) -> str:
    """``data:<type>;base64,...`` of ``data``."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def image(data: bytes, media_type: str, caption: str) -> str:
    """A ``<figure>`` holding the image inline, with its caption as alt text too."""
    return (f'<figure><img src="{data_uri(data, media_type)}" alt="{text(caption)}">'
            f"<figcaption>{text(caption)}</figcaption></figure>")


def run_figures(run_dir: Path) -> list[Path]:
    """The PNG and SVG figures in ``RUN/analysis/``: the thesis' figures in :data:`ORDER`, then any others."""
    folder = run_dir / ANALYSIS
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.suffix.lower() in MEDIA_TYPES and path.is_file()]
    rank = {name: position for position, name in enumerate(ORDER)}
    return sorted(found, key=lambda path: (rank.get(path.stem, len(ORDER)), path.name))


def figure_file(path: Path) -> str:
    """A figure file as an inline ``<figure>``, captioned by its file name."""
    return image(path.read_bytes(), MEDIA_TYPES[path.suffix.lower()], path.name)
