"""A tiny University-1652 folder in the layout its authors distribute (``University-Release``), for tests.

Training buildings 0001-0004, test buildings 0101-0103 queried, and 0104 and
0105 in the galleries only (the distractors). Each building has its own
colour, so a model can learn to match its views.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TRAIN = ("0001", "0002", "0003", "0004")
QUERIED = ("0101", "0102", "0103")
DISTRACTORS = ("0104", "0105")
DRONE_VIEWS = 9
STREET_VIEWS = 2


def _image(path: Path, building: str, view: int, size: int = 24) -> None:
    rng = np.random.default_rng([int(building), view])
    colour = np.random.default_rng(int(building)).integers(0, 256, 3)
    pixels = np.clip(colour + rng.integers(-20, 21, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _views(root: Path, folder: str, buildings, count: int, suffix: str) -> None:
    for building in buildings:
        for view in range(1, count + 1):
            _image(root / folder / building / f"image-{view:02d}{suffix}", building, view)


def _satellite(root: Path, folder: str, buildings) -> None:
    for building in buildings:
        _image(root / folder / building / f"{building}.jpg", building, 0)


def make_university1652(root: Path) -> Path:
    """Write every folder the plugin reads, with small JPEGs; returns the ``University-Release`` folder."""
    root = Path(root) / "University-Release"
    _views(root, "train/drone", TRAIN, DRONE_VIEWS, ".jpeg")
    _views(root, "train/street", TRAIN, STREET_VIEWS, ".jpg")
    _satellite(root, "train/satellite", TRAIN)
    _views(root, "test/query_drone", QUERIED, DRONE_VIEWS, ".jpeg")
    _views(root, "test/gallery_drone", QUERIED + DISTRACTORS, DRONE_VIEWS, ".jpeg")
    _satellite(root, "test/query_satellite", QUERIED)
    _satellite(root, "test/gallery_satellite", QUERIED + DISTRACTORS)
    _views(root, "test/query_street", QUERIED, STREET_VIEWS, ".jpg")
    _views(root, "test/gallery_street", QUERIED + DISTRACTORS, STREET_VIEWS, ".jpg")
    return root
