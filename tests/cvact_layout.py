"""Builds a small CVACT copy in the authors' on-disk layout: a real ACT_data.mat and tiny JPEG files.

``make_cvact(root)`` writes 12 panoramas ``pano000`` .. ``pano011`` 100 m
apart: train = MATLAB indices 1..6, valSet = 7..10, valSetAll = 7..12.
Every id's two images are in ANU_data_small, and valSetAll's in ANU_data_test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.io
from PIL import Image

GROUND_SIZE = (16, 32)  # height, width
AERIAL_SIZE = (16, 16)
REMOVE = object()
"""Pass as a ``mat`` value to leave that variable out of ACT_data.mat."""


def pano_ids(count: int) -> list[str]:
    """The default ids, all of one length as a MATLAB char matrix needs."""
    return [f"pano{i:03d}" for i in range(count)]


def column(indices: Sequence[float]) -> np.ndarray:
    """1-based indices as MATLAB stores them: a (K, 1) column of doubles."""
    return np.asarray(indices, dtype=np.float64).reshape(-1, 1)


def make_cvact(root: Path, count: int = 12, train: Sequence[float] = range(1, 7),
               val: Sequence[float] = range(7, 11), val_all: Sequence[float] = range(7, 13),
               utm: np.ndarray | None = None, ids: Sequence[str] | None = None, test_folder: bool = True,
               mat: dict[str, Any] | None = None) -> Path:
    """Write a valid CVACT copy under ``root`` and return ``root``.

    ``train``, ``val`` and ``val_all`` are 1-based indices (trainSet.trainInd,
    valSet.valInd, valSetAll.valInd); ``utm`` (count, 2) defaults to points
    100 m apart; ``ids`` may hold space-padded strings of one length;
    ``test_folder=False`` leaves ANU_data_test out; ``mat`` overrides
    variables of ACT_data.mat (:data:`REMOVE` drops one).
    """
    root = Path(root)
    ids = list(ids) if ids is not None else pano_ids(count)
    if utm is None:
        utm = np.stack([690000.0 + 100.0 * np.arange(count), np.full(count, 6090000.0)], axis=1)
    variables = {
        "panoIds": np.array(ids),
        "utm": np.asarray(utm, dtype=np.float64),
        "trainSet": {"trainInd": column(train)},
        "valSet": {"valInd": column(val)},
        "valSetAll": {"valInd": column(val_all)},
    }
    for key, value in (mat or {}).items():
        if value is REMOVE:
            variables.pop(key)
        else:
            variables[key] = value
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "ACT_data.mat", variables)
    stripped = [name.strip() for name in ids]
    write_images(root / "ANU_data_small", stripped, range(len(stripped)))
    if test_folder:
        chosen = [int(i) - 1 for i in val_all if 1 <= int(i) <= len(stripped)]
        write_images(root / "ANU_data_test", stripped, chosen)
    return root


def write_images(folder: Path, ids: Sequence[str], chosen: Sequence[int]) -> None:
    """The ground panorama and aerial tile of each chosen id, each a flat colour of its own."""
    (folder / "streetview").mkdir(parents=True, exist_ok=True)
    (folder / "satview_polish").mkdir(parents=True, exist_ok=True)
    for index in chosen:
        colour = np.random.default_rng(index).integers(0, 256, 3, dtype=np.uint8)
        ground = np.broadcast_to(colour, (*GROUND_SIZE, 3))
        aerial = np.broadcast_to(colour, (*AERIAL_SIZE, 3))
        Image.fromarray(np.ascontiguousarray(ground)).save(folder / "streetview" / f"{ids[index]}_grdView.jpg")
        Image.fromarray(np.ascontiguousarray(aerial)).save(folder / "satview_polish" / f"{ids[index]}_satView_polish.jpg")
