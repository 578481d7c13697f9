"""A small copy of VIGOR in its on-disk layout, for the vigor plugin's tests and the harness's.

Every city gets ``tiles`` satellite tiles ``satellite_<lat>_<lng>.png`` (16x16
PNG) listed in that order in ``splits/<city>/satellite_list.txt``, and
``panoramas`` panoramas ``<panoid>,<lat>,<lng>,.jpg`` (16x32 JPEG). Panorama j
has tile j as its positive and tiles j+1, j+2, j+3 (mod ``panoramas``) as
semi-positives, so the last ``tiles - panoramas`` tiles are in no label line.
``pano_label_balanced.txt`` lists every panorama; the last one is the
same-area test query, the others the same-area train queries. The offsets of
panorama j's positive are (OFFSET_ROW * (j + 1), OFFSET_COL * (j + 1)) pixels,
plus ``CORRECTED_SHIFT`` in the corrected label files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CITIES = ("Chicago", "NewYork", "SanFrancisco", "Seattle")
ORIGIN = {"Chicago": (41.88, -87.66), "NewYork": (40.71, -74.0), "SanFrancisco": (37.77, -122.41),
          "Seattle": (47.6, -122.33)}
OFFSET_ROW, OFFSET_COL = 10.0, -20.0
CORRECTED_SHIFT = 100.0
LABEL_STEMS = ("pano_label_balanced", "same_area_balanced_train", "same_area_balanced_test")


def tile_name(city: str, k: int) -> str:
    """File name of tile ``k`` of ``city``."""
    lat, lon = tile_location(city, k)
    return f"satellite_{lat:.6f}_{lon:.6f}.png"


def tile_location(city: str, k: int) -> tuple[float, float]:
    lat, lon = ORIGIN[city]
    return round(lat + 0.001 * k, 6), round(lon + 0.001 * k, 6)


def panorama_name(city: str, j: int) -> str:
    """File name of panorama ``j`` of ``city``."""
    lat, lon = panorama_location(city, j)
    return f"-{city[:3]}pano{j}x,{lat:.6f},{lon:.6f},.jpg"


def panorama_location(city: str, j: int) -> tuple[float, float]:
    lat, lon = tile_location(city, j)
    return round(lat + 0.0002, 6), round(lon - 0.0001, 6)


def label_line(city: str, j: int, panoramas: int, shift: float = 0.0) -> str:
    """Panorama j's 13-field label line."""
    fields = [panorama_name(city, j)]
    for n in range(4):
        k = (j + n) % panoramas
        fields += [tile_name(city, k), f"{OFFSET_ROW * (j + 1) + shift + n}", f"{OFFSET_COL * (j + 1) + shift - n}"]
    return " ".join(fields)


def make_vigor(root: Path, tiles: int = 5, panoramas: int = 4, corrected: str | None = None) -> Path:
    """Write a small valid VIGOR under ``root`` and return it.

    ``corrected``: None writes the original labels in ``splits/``;
    "splits__corrected" also writes the corrected labels (offsets shifted by
    ``CORRECTED_SHIFT``) into ``splits__corrected/``; "splits" writes only the
    corrected labels, into ``splits/`` (a user who renamed the folder).
    """
    assert 4 <= panoramas <= tiles
    root = Path(root)
    rng = np.random.default_rng(0)
    for city in CITIES:
        for k in range(tiles):
            _write(root / city / "satellite" / tile_name(city, k), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        for j in range(panoramas):
            _write(root / city / "panorama" / panorama_name(city, j), rng.integers(0, 256, (16, 32, 3), dtype=np.uint8))
        if corrected != "splits":
            _write_splits(root / "splits" / city, city, tiles, panoramas, suffix="", shift=0.0)
        if corrected is not None:
            _write_splits(root / corrected / city, city, tiles, panoramas, suffix="__corrected", shift=CORRECTED_SHIFT)
    return root


def _write_splits(folder: Path, city: str, tiles: int, panoramas: int, suffix: str, shift: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "satellite_list.txt").write_text("".join(f"{tile_name(city, k)}\n" for k in range(tiles)))
    lines = [label_line(city, j, panoramas, shift) for j in range(panoramas)]
    chosen = {"pano_label_balanced": lines, "same_area_balanced_train": lines[:-1],
              "same_area_balanced_test": lines[-1:]}
    for stem, rows in chosen.items():
        (folder / f"{stem}{suffix}.txt").write_text("".join(f"{row}\n" for row in rows))


def _write(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
