"""A tiny CVUSA folder in the layout its authors distribute, for tests of the cvusa plugin and the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

TRAIN_IDS = tuple(range(1, 11))
VAL_IDS = tuple(range(101, 107))


def cvusa_line(image_id: int) -> str:
    """One line of a ``*-19zl.csv`` file: aerial tile, ground panorama, unused annotation."""
    name = f"{image_id:07d}"
    return f"bingmap/19/{name}.jpg,streetview/panos/{name}.jpg,streetview/annotations/{name}.png"


def make_cvusa(root: Path, train_ids: Iterable[int] = TRAIN_IDS, val_ids: Iterable[int] = VAL_IDS,
               pano_size: tuple[int, int] = (16, 32), tile_size: int = 16) -> Path:
    """Write split files and tiny JPEGs (16x32 panoramas, 16x16 tiles; both views of a pair share a colour)."""
    root = Path(root)
    for folder in ("splits", "bingmap/19", "streetview/panos"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, ids in (("train-19zl.csv", list(train_ids)), ("val-19zl.csv", list(val_ids))):
        (root / "splits" / name).write_text("".join(cvusa_line(i) + "\n" for i in ids))
        for image_id in ids:
            colour = np.random.default_rng(image_id).integers(0, 256, 3, dtype=np.uint8)
            tile = np.broadcast_to(colour, (tile_size, tile_size, 3))
            pano = np.broadcast_to(colour, (*pano_size, 3))
            Image.fromarray(np.ascontiguousarray(tile)).save(root / f"bingmap/19/{image_id:07d}.jpg")
            Image.fromarray(np.ascontiguousarray(pano)).save(root / f"streetview/panos/{image_id:07d}.jpg")
    return root
