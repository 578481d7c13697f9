"""The CVACT dataset (Liu and Li, CVPR 2019): Canberra street-view panoramas matched to satellite tiles.

Read exactly as the authors distribute it (https://github.com/Liumouliu/OriCNN):
``ACT_data.mat`` lists every panorama id with its UTM position and, as 1-based
MATLAB indices, which of them form each subset; the images lie in
``ANU_data_small`` (CVACT_val) and ``ANU_data_test`` (CVACT_test). Two
protocols, both trained on ``trainSet.trainInd``:

- ``val`` (CVACT_val, the default): evaluated one-to-one on ``valSet.valInd``.
- ``test`` (CVACT_test): evaluated on ``valSetAll.valInd`` from
  ``ANU_data_test``, where retrieving any tile within ``distance`` metres
  (25 m) of the query also counts as correct (``also_correct``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvbench.contract import Dataset
from cvbench.contract.hookspecs import hookimpl
from cvbench.data import CrossViewPairs, FileImages
from cvbench.data.entries import first_occurrences
from cvbench.data.layout import Listings, require_layout
from cvbench.data.problems import Problem, report_problem, report_skipped
from cvbench.errors import SpecError

DATASET = "CVACT"
CITY = "Canberra"
MAT_FILE = "ACT_data.mat"
SMALL, TEST = "ANU_data_small", "ANU_data_test"
GROUND_DIR, AERIAL_DIR = "streetview", "satview_polish"
GROUND_SUFFIX, AERIAL_SUFFIX = "_grdView.jpg", "_satView_polish.jpg"
SPLITS = ("val", "test")
TRAIN_KEY = "trainSet.trainInd"
EVAL_KEYS = {"val": "valSet.valInd", "test": "valSetAll.valInd"}
EVAL_FOLDERS = {"val": SMALL, "test": TEST}
DEFAULT_DISTANCE = 25.0
IMAGE_SIZES = {"ground": (112, 616), "aerial": (256, 256)}  # thesis section 4.2

REQUIRED = [MAT_FILE, f"{SMALL}/{GROUND_DIR}", f"{SMALL}/{AERIAL_DIR}"]
TEST_REQUIRED = [f"{TEST}/{GROUND_DIR}", f"{TEST}/{AERIAL_DIR}"]
LAYOUT = """\
ROOT/
  ACT_data.mat                  panoIds, utm, trainSet, valSet, valSetAll
  ANU_data_small/
    streetview/<id>_grdView.jpg
    satview_polish/<id>_satView_polish.jpg
  ANU_data_test/                only for split test
    streetview/<id>_grdView.jpg
    satview_polish/<id>_satView_polish.jpg
"""
SOURCE = (f"CVACT is obtained from the authors via https://github.com/Liumouliu/OriCNN ({MAT_FILE} comes "
          "with it), then pass --data-root ROOT.")


@dataclass
class ActData:
    """What ``ACT_data.mat`` says: ids (N,), UTM metres (N, 2) and each index key's 0-based indices."""

    pano_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=str))
    utm: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    indices: dict[str, np.ndarray] = field(default_factory=dict)


class Cvact(Dataset):
    """CVACT with protocols ``val`` (CVACT_val, default) and ``test`` (CVACT_test); see the module docstring.

    Option ``distance`` (metres, default 25.0, > 0): the radius within which
    another tile also counts as correct on the ``test`` protocol.
    """

    def __init__(self, root: Path | str | None = None, **options: Any) -> None:
        self.distance = parse_distance(options)
        self.root = require_layout(DATASET, root, REQUIRED, LAYOUT, SOURCE)
        self._data: ActData | None = None
        self._listings = Listings()
        self._subsets: dict[tuple[str, str], CrossViewPairs] = {}

    def splits(self) -> list[str]:
        """``["val", "test"]``: CVACT_val first (the default), then CVACT_test."""
        return list(SPLITS)

    @staticmethod
    def image_sizes() -> dict[str, tuple[int, int]]:
        """The thesis' (section 4.2) CVACT input sizes: 112x616 panoramas and 256x256 tiles."""
        return dict(IMAGE_SIZES)

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` (``trainSet.trainInd``, one set for both protocols) or ``val`` subset of ``split``."""
        if split == "test":
            require_layout(f"{DATASET} (split test)", self.root, TEST_REQUIRED, LAYOUT, SOURCE)
        folder, key = (SMALL, TRAIN_KEY) if subset == "train" else (EVAL_FOLDERS[split], EVAL_KEYS[split])
        if (folder, key) not in self._subsets:
            self._subsets[(folder, key)] = self._pairs(folder, key, subset, near=split == "test" and subset == "val")
        return self._subsets[(folder, key)]

    def _pairs(self, folder: str, key: str, subset: str, near: bool) -> CrossViewPairs:
        """One pair per listed panorama whose two images exist; ``near`` fills ``also_correct``."""
        data = self._act_data()
        ground_dir, aerial_dir = self.root / folder / GROUND_DIR, self.root / folder / AERIAL_DIR
        mat = self.root / MAT_FILE
        listed = list(enumerate(data.indices.get(key, np.empty(0, dtype=np.int64)).tolist(), start=1))
        if key in data.indices and not listed:
            report_problem(mat, f"{key!r} lists no panorama; expected 1-based MATLAB indices into panoIds")
        listed = first_occurrences(mat, listed, key=lambda entry: f"panoId {data.pano_ids[entry[1]]}",
                                   line=lambda entry: entry[0], what=f"entries of {key!r}", unit=f"{key!r} entry")
        kept, skipped = [], []
        for _, index in listed:
            pano = str(data.pano_ids[index])
            if not is_file_name(pano):
                report_problem(mat, f"panoIds entry {index + 1} is {pano!r}, not a panorama id: expected a file name "
                                    f"stem without a path (it names {pano}{GROUND_SUFFIX} in {ground_dir})")
                continue
            files = [ground_dir / f"{pano}{GROUND_SUFFIX}", aerial_dir / f"{pano}{AERIAL_SUFFIX}"]
            missing = [path for path in files if not self._listings.exists(path)]
            if missing:
                skipped.append(missing_pair(missing, pano, int(index)))
            else:
                kept.append(int(index))
        report_skipped(f"{DATASET} {subset} pairs ({key}, {folder}) whose image files are missing", skipped)
        if skipped and not kept:
            report_problem(mat, f"none of the {len(skipped)} panoramas of {key!r} has both image files in "
                                f"{self.root / folder}; expected {GROUND_DIR}/<id>{GROUND_SUFFIX} and "
                                f"{AERIAL_DIR}/<id>{AERIAL_SUFFIX}")
        kept_ids = np.asarray(kept, dtype=np.int64)
        names = [str(data.pano_ids[i]) for i in kept_ids]
        meta = pd.DataFrame({"city": [CITY] * len(kept_ids), "x": data.utm[kept_ids, 0], "y": data.utm[kept_ids, 1],
                             "name": names, "index": kept_ids})
        return CrossViewPairs(
            ground=FileImages([ground_dir / f"{name}{GROUND_SUFFIX}" for name in names]),
            aerial=FileImages([aerial_dir / f"{name}{AERIAL_SUFFIX}" for name in names]),
            positives=np.arange(len(kept_ids)),
            ground_meta=meta,
            aerial_meta=meta.copy(),
            also_correct=neighbours_within(data.utm[kept_ids], self.distance) if near else None,
        )

    def _act_data(self) -> ActData:
        if self._data is None:
            self._data = read_act_data(self.root / MAT_FILE)
        return self._data



def parse_distance(options: dict[str, Any]) -> float:
    """The ``distance`` option as positive metres; any other option is a :class:`SpecError`."""
    unknown = sorted(set(options) - {"distance"})
    if unknown:
        raise SpecError(f"the {DATASET} dataset has no option {unknown[0]!r}; it accepts: distance "
                        f"(metres, default {DEFAULT_DISTANCE})")
    value = options.get("distance", DEFAULT_DISTANCE)
    try:
        distance = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
        distance = math.nan
    if not (math.isfinite(distance) and distance > 0):
        raise SpecError(f"{DATASET} option distance={value!r}: expected a positive number of metres "
                        f"(default {DEFAULT_DISTANCE})")
    return distance


def is_file_name(pano: str) -> bool:
    """Whether ``pano`` is a plain name: no folder part, so ``<pano>_grdView.jpg`` stays in its folder."""
    return not any(sep in pano for sep in ("/", "\\", os.sep))


def missing_pair(missing: list[Path], pano: str, index: int) -> Problem:
    """The skipped-pair record: the first missing file, and the other one when both are."""
    also = f" (also missing: {missing[1]})" if len(missing) > 1 else ""
    where = f"panoId {pano!r}, 0-based index {index} in {MAT_FILE}"
    return Problem(str(missing[0]), f"missing image of {where}{also}; the pair is skipped")


def neighbours_within(points: np.ndarray, distance: float) -> np.ndarray:
    """(N, K) -1 padded: for each point, the indices of the OTHER points within ``distance``, ascending."""
    from scipy.spatial import cKDTree

    if len(points) == 0:
        return np.empty((0, 0), dtype=np.int64)
    found = cKDTree(points).query_ball_point(points, r=distance, return_sorted=True)
    rows = [[j for j in near if j != i] for i, near in enumerate(found)]
    table = np.full((len(rows), max(len(row) for row in rows)), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return table


def read_act_data(path: Path) -> ActData:
    """Parse ``ACT_data.mat``; each problem is reported (:func:`report_problem`) naming the key.

    When collecting problems, what cannot be used is left out: an unreadable
    ``panoIds`` or ``utm`` leaves no pairs, a bad index is dropped.
    """
    contents = load_mat(path)
    if contents is None:
        return ActData()
    pano_ids = read_pano_ids(path, contents)
    utm = read_utm(path, contents, None if pano_ids is None else len(pano_ids))
    usable = pano_ids is not None and utm is not None
    count = len(pano_ids) if usable else None
    indices = {key: read_indices(path, contents, key, count) for key in (TRAIN_KEY, *EVAL_KEYS.values())}
    return ActData(pano_ids, utm, indices) if usable else ActData()


# Run in a child process: on some corrupt files (a real matrix flagged complex, followed by another
# variable) scipy's reader crashes the whole interpreter with a segmentation fault.
_READ_MAT = """\
import pickle, sys
try:
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version
    if matfile_version(sys.argv[1])[0] == 2:  # v7.3, an HDF5 file: scipy leaves those to h5py
        result = ("v7.3", None)
    else:
        result = ("ok", loadmat(sys.argv[1], squeeze_me=True, struct_as_record=False))
except BaseException as exc:
    result = ("error", f"{type(exc).__name__}: {exc}")
try:
    data = pickle.dumps(result)
except BaseException as exc:
    data = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
sys.stdout.buffer.write(data)
"""


def load_mat(path: Path) -> dict[str, Any] | None:
    """The variables of a MATLAB v5 file, structs as attribute objects and singleton axes squeezed.

    scipy reads the file in a child process (``_READ_MAT``), so that a file
    that crashes scipy is reported like any other unreadable file.
    """
    import pickle
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-P", "-c", _READ_MAT, str(path)], capture_output=True)
    try:
        status, value = pickle.loads(child.stdout) if child.returncode == 0 else ("crash", child.returncode)
    except Exception as exc:  # noqa: BLE001 - a child that printed no result
        status, value = "error", f"{type(exc).__name__}: {exc}"
    if status == "ok":
        return value
    if status == "v7.3":  # needs h5py, not a dependency
        report_problem(path, "is a MATLAB v7.3 (HDF5) file; expected the MATLAB v5 file the CVACT authors "
                             "distribute (re-save it in MATLAB with save(..., '-v7'))")
    elif status == "crash":
        report_problem(path, f"cannot be read as a MATLAB .mat file: scipy's reader crashed on it (exit status "
                             f"{value}), so the file is corrupt; expected the MATLAB v5 file the CVACT authors "
                             "distribute")
    else:
        report_problem(path, f"cannot be read as a MATLAB .mat file ({value})")
    return None


def lookup(contents: dict[str, Any], key: str) -> Any:
    """``contents["a"].b`` for key ``"a.b"``, through MATLAB structs; ``None`` where a part is missing."""
    value: Any = contents
    for part in key.split("."):
        if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
            value = value.item()
        if isinstance(value, dict):
            value = value.get(part)
        elif part in (getattr(value, "_fieldnames", None) or ()):
            value = getattr(value, part)
        else:
            return None
    return value


def read_pano_ids(path: Path, contents: dict[str, Any]) -> np.ndarray | None:
    """``panoIds`` as stripped strings (a char matrix pads them with spaces)."""
    raw = lookup(contents, "panoIds")
    values = None if raw is None else np.ravel(raw)
    if values is None or values.dtype.kind not in "USO":
        what = "has no 'panoIds'" if raw is None else f"'panoIds' holds {values.dtype} values"
        report_problem(path, f"{what}: expected the panorama ids as a char matrix or cell array of strings")
        return None
    return np.array([str(value).strip() for value in values], dtype=str)


UTM_LIMIT = 1e8
"""Largest plausible UTM coordinate in metres (northings reach 1e7); beyond it a value is corrupt, and
scipy's KD-tree of the 25 m neighbours overflows on such values."""


def read_utm(path: Path, contents: dict[str, Any], count: int | None) -> np.ndarray | None:
    """``utm`` as float (N, 2): the two UTM coordinates (metres) of each panorama."""
    raw = lookup(contents, "utm")
    if raw is None:
        report_problem(path, "has no 'utm': expected an (N, 2) array of UTM coordinates in metres, one row per panoId")
        return None
    utm = np.asarray(raw)
    if utm.ndim == 1 and count == 1:
        utm = utm[None]
    rows = "N" if count is None else str(count)
    if utm.dtype.kind not in "iuf" or utm.ndim != 2 or utm.shape[1] < 2 or (count is not None and len(utm) != count):
        report_problem(path, f"'utm' is {utm.dtype} {utm.shape}: expected ({rows}, 2) UTM coordinates in metres, "
                             "one row per panoId")
        return None
    utm = utm[:, :2].astype(np.float64)
    bad = ~np.isfinite(utm) | (np.abs(utm) > UTM_LIMIT)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        report_problem(path, f"'utm' row {row + 1} is {utm[row].tolist()}: expected UTM coordinates in metres "
                             f"(finite, at most {UTM_LIMIT:.0e} in size)")
        return None
    return utm


def read_indices(path: Path, contents: dict[str, Any], key: str, count: int | None) -> np.ndarray:
    """``key``'s 1-based MATLAB indices as 0-based; checked against 1..``count`` when it is known."""
    raw = lookup(contents, key)
    expected = "expected a (K, 1) array of 1-based MATLAB indices into panoIds"
    values = None if raw is None else np.ravel(raw)
    if values is None or values.dtype.kind not in "iuf":
        what = f"has no {key!r}" if raw is None else f"{key!r} holds {values.dtype} values"
        report_problem(path, f"{what}: {expected}")
        return np.empty(0, dtype=np.int64)
    values = values.astype(np.float64)
    whole = np.isfinite(values) & (values == np.round(values))
    inside = whole if count is None else whole & (values >= 1) & (values <= count)
    for bad, adjective, where in ((~whole, "non-integer ", ""), (whole & ~inside, "", f" outside 1..{count}")):
        if bad.any():
            shown = ", ".join(f"{value:g}" for value in values[bad][:5])
            noun = "index" if bad.sum() == 1 else "indices"
            report_problem(path, f"{key!r} holds {int(bad.sum())} {adjective}{noun}{where} ({shown}): {expected}")
    return values[inside].astype(np.int64) - 1


@hookimpl
def register_datasets(register):
    """Register ``cvact`` with cvbench."""
    register("cvact", Cvact, summary="CVACT (Canberra) panoramas vs satellite tiles: CVACT_val (val) and "
                                     "CVACT_test (test, tiles within 25 m also correct)")
