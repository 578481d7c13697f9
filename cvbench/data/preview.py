"""Pictures and files of a dataset for people: a preview sheet and an export to image files."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_png
from .pairs import CrossViewPairs


def preview_sheet(pairs: CrossViewPairs, queries: Sequence[int], out: str | Path, title: str = "") -> Path:
    """One row per query: the query image, then its positive from the gallery, with the city where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(queries)
    query_shape = np.asarray(pairs.queries[int(queries[0])]).shape if rows else (1, 1)
    wide = query_shape[1] / max(query_shape[0], 1)  # a panorama is about four times as wide as high
    fig, axes = plt.subplots(rows, 2, figsize=(2.5 * (wide + 1), 1.6 * rows + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [wide, 1]})
    describe = {"ground": "panorama (N at left edge, E at 1/4)" if wide > 2 else "ground image",
                "aerial": "tile (north up)"}
    for row, query in enumerate(queries):
        positive = int(pairs.positives[query])
        axes[row, 0].imshow(pairs.queries[int(query)])
        axes[row, 1].imshow(pairs.gallery[positive])
        label = f"query {query}"
        if "city" in pairs.query_meta:
            label += f" · {pairs.query_meta['city'].iloc[int(query)]}"
        axes[row, 0].set_title(f"{label} · {describe[pairs.query_view]}", fontsize=8, loc="left")
        axes[row, 1].set_title(f"positive {positive}: {describe[pairs.gallery_view]}", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return write_png(fig, out, dpi=100)


def export_pairs(subsets: dict[str, CrossViewPairs], out: str | Path) -> Path:
    """Write every image as PNG and ``pairs.csv`` (ground, aerial, x, y, split, city) beside them.

    A tile that no query points at gets a row of its own with an empty
    ``ground`` cell, so the ``pairs`` dataset reads back the whole gallery.
    Each subset's folder also gets the files ``cvbench index`` and
    ``cvbench localize`` read (:func:`export_localisation`).
    """
    out = Path(out)
    rows = []
    turned = [subset for subset, pairs in subsets.items() if pairs.query_view != "ground"]
    if turned:
        raise ValueError(f"export writes ground-to-aerial pairs; {', '.join(turned)} queries with aerial images")
    for subset, pairs in subsets.items():
        (out / subset / "ground").mkdir(parents=True, exist_ok=True)
        (out / subset / "aerial").mkdir(parents=True, exist_ok=True)
        for tile in range(pairs.num_references):
            _save_png(pairs.aerial[tile], out / subset / "aerial" / f"{tile:06d}.png")
        for query in range(pairs.num_queries):
            _save_png(pairs.ground[query], out / subset / "ground" / f"{query:06d}.png")
            meta = pairs.ground_meta.iloc[query] if len(pairs.ground_meta) else {}
            rows.append({
                "ground": f"{subset}/ground/{query:06d}.png",
                "aerial": f"{subset}/aerial/{int(pairs.positives[query]):06d}.png",
                "x": meta.get("x", np.nan), "y": meta.get("y", np.nan),
                "split": subset, "city": meta.get("city", ""),
            })
        for tile in sorted(set(range(pairs.num_references)) - set(pairs.positives.tolist())):
            meta = pairs.aerial_meta.iloc[tile] if len(pairs.aerial_meta) else {}
            rows.append({
                "ground": "", "aerial": f"{subset}/aerial/{tile:06d}.png",
                "x": meta.get("x", np.nan), "y": meta.get("y", np.nan),
                "split": subset, "city": meta.get("city", ""),
            })
        export_localisation(pairs, out / subset)
    index = out / "pairs.csv"
    with atomic_path(index) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return index


LOCALISATION_FILES = ("tiles.csv", "queries.csv")


def export_localisation(pairs: CrossViewPairs, folder: Path) -> list[Path]:
    """``tiles.csv`` (path and position of every tile) and ``queries.csv`` (every query's true position and tile).

    Positions are ``lat,lon`` where the items carry them, else ``x,y``
    metres; paths are relative to ``folder`` (``aerial/000007.png``). A
    subset without a position for every item gets neither file.
    """
    columns = next((pair for pair in (("lat", "lon"), ("x", "y"))
                    if set(pair) <= set(pairs.ground_meta.columns) and set(pair) <= set(pairs.aerial_meta.columns)),
                   None)
    if columns is None or not all(np.isfinite(meta[list(columns)].to_numpy(np.float64)).all()
                                  for meta in (pairs.ground_meta, pairs.aerial_meta)):
        return []
    tiles = pd.DataFrame({"path": [f"aerial/{tile:06d}.png" for tile in range(pairs.num_references)]})
    queries = pd.DataFrame({"path": [f"ground/{query:06d}.png" for query in range(pairs.num_queries)]})
    for column in columns:
        tiles[column] = pairs.aerial_meta[column].to_numpy()
        queries[column] = pairs.ground_meta[column].to_numpy()
    queries["tile"] = [f"aerial/{int(tile):06d}.png" for tile in pairs.positives]
    written = []
    for name, frame in zip(LOCALISATION_FILES, (tiles, queries)):
        with atomic_path(folder / name) as tmp:
            frame.to_csv(tmp, index=False)
        written.append(folder / name)
    return written


def _save_png(array: np.ndarray, path: Path) -> None:
    """One image as PNG, atomically (an interrupted export never leaves a truncated file)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
