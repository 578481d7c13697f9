"""The ``cvusa`` dataset plugin: CVUSA's ground panoramas and Bing tiles, read as the authors distribute them.

CVUSA (Workman et al., "Wide-Area Image Geolocalization with Aerial Reference
Imagery", ICCV 2015) in the subset CVM-Net and SAFA use: 35,532 training and
8,884 validation pairs, each a street-view panorama at the centre of a zoom-19
Bing tile, north-aligned. The pairs are listed in ``splits/train-19zl.csv`` and
``splits/val-19zl.csv``; the thesis evaluates on the val list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvbench.contract import Dataset
from cvbench.contract.hookspecs import hookimpl
from cvbench.data import CrossViewPairs, FileImages
from cvbench.data.entries import (
    OUTSIDE_ROOT_OPTION,
    first_occurrences,
    inside_root,
    outside_root_allowed,
    require_entries,
)
from cvbench.data.layout import Listings, require_layout, text_lines
from cvbench.data.problems import Problem, report_problem, report_skipped
from cvbench.errors import SpecError

SPLIT = "val"
SPLIT_FILES = {"train": "splits/train-19zl.csv", "val": "splits/val-19zl.csv"}
IMAGE_FOLDERS = ("bingmap/19", "streetview/panos")
FIELDS = 3
EXAMPLE_LINE = "bingmap/19/ID.jpg,streetview/panos/ID.jpg,streetview/annotations/ID.png"

LAYOUT = """\
ROOT/
  splits/train-19zl.csv     bingmap/19/0000001.jpg,streetview/panos/0000001.jpg,streetview/annotations/0000001.png
  splits/val-19zl.csv       the same three columns, no header
  bingmap/19/*.jpg          aerial tiles (first column)
  streetview/panos/*.jpg    ground panoramas (second column)
"""

SOURCE = """\
CVUSA is obtained from its authors at https://mvrl.cse.wustl.edu/datasets/cvusa (request the subset \
used by CVM-Net and SAFA, the one with splits/train-19zl.csv); unpack it and pass its folder as --data-root ROOT.
"""


class CVUSA(Dataset):
    """CVUSA's one protocol, ``val``: train pairs from ``train-19zl.csv``, evaluation on ``val-19zl.csv``.

    Each pair has its own tile, so a subset's gallery is its tiles in file
    order and query i's positive is tile i. Metadata: ``name``, the 7-digit
    image id (CVUSA spans the USA, so there is no city column). Pairs whose
    image files are missing are skipped with a warning, and so are the later
    lines of a panorama or tile listed twice; a line without three
    comma-separated fields, an empty split file and a path outside the data
    root are errors naming the file (and line). Option ``allow_outside_root``
    (false) accepts paths outside the root.
    """

    def __init__(self, root: Path | str | None = None, allow_outside_root: bool = False, **options: Any) -> None:
        if options:
            raise SpecError(f"the cvusa dataset has no option {', '.join(sorted(options))}; it accepts: "
                            f"{OUTSIDE_ROOT_OPTION}")
        self.allow_outside_root = outside_root_allowed("cvusa", allow_outside_root)
        required = [*SPLIT_FILES.values(), *IMAGE_FOLDERS]
        self.root = require_layout("CVUSA", root, required, LAYOUT, SOURCE).absolute()

    def splits(self) -> list[str]:
        """``["val"]``: the protocol of CVM-Net, SAFA and the thesis."""
        return [SPLIT]

    @staticmethod
    def image_sizes() -> dict[str, tuple[int, int]]:
        """The thesis' (and SAFA's) input sizes for CVUSA and CVACT: panoramas 112x616, tiles 256x256."""
        return {"ground": (112, 616), "aerial": (256, 256)}

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` or ``val`` pairs of the split file, those whose two images exist."""
        path = self.root / SPLIT_FILES[subset]
        pairs = parse_split_file(path, self.root, self.allow_outside_root)
        kept, missing = present_pairs(self.root, pairs)
        report_skipped(f"CVUSA {SPLIT} {subset} pairs whose image files are missing", [
            Problem(str(path), f"missing image {', '.join(str(self.root / name) for name in names)}; pair skipped",
                    line) for line, names in missing])
        if pairs and not kept:
            report_problem(path, f"none of its {len(pairs)} pairs has both image files on disk; expected pairs of "
                                 f"{' and '.join(IMAGE_FOLDERS)} files")
        aerial = [self.root / tile for _, tile, _ in kept]
        ground = [self.root / pano for _, _, pano in kept]
        return CrossViewPairs(
            ground=FileImages(ground), aerial=FileImages(aerial), positives=np.arange(len(kept)),
            ground_meta=pd.DataFrame({"name": [p.stem for p in ground]}),
            aerial_meta=pd.DataFrame({"name": [p.stem for p in aerial]}))


def parse_split_file(path: Path, root: Path, allow_outside_root: bool = False) -> list[tuple[int, str, str]]:
    """(line, aerial path, ground path) of each well-formed line of a ``*-19zl.csv`` file, each pair once.

    A line without exactly three non-empty fields, or naming a file outside
    ``root`` (unless ``allow_outside_root``), is reported and left out; an
    empty file is an error. A panorama or tile listed again is reported and
    its later lines dropped: each pair has its own tile, so a repeat would be
    a second query or a second gallery tile.
    """
    lines = list(text_lines(path))
    require_entries(path, len(lines), f"one pair a line ({EXAMPLE_LINE})")
    pairs = []
    for line, text in lines:
        fields = [field.strip() for field in text.split(",")]
        if len(fields) != FIELDS or not all(fields[:2]):
            report_problem(path, f"expected 3 comma-separated fields, the first two non-empty ({EXAMPLE_LINE}), "
                                 f"got {text!r}", line=line)
            continue
        if all(inside_root(root, name, path, line, allow_outside_root) for name in fields[:2]):
            pairs.append((line, fields[0], fields[1]))
    pairs = first_occurrences(path, pairs, key=lambda pair: f"panorama {pair[2]}", line=_line, what="panoramas")
    return first_occurrences(path, pairs, key=lambda pair: f"tile {pair[1]}", line=_line, what="tiles")


def _line(pair: tuple[int, str, str]) -> int:
    return pair[0]


def present_pairs(root: Path, pairs: list[tuple[int, str, str]]
                  ) -> tuple[list[tuple[int, str, str]], list[tuple[int, list[str]]]]:
    """The pairs whose two files exist, and (line, missing names) of the others; one listing per folder."""
    listings = Listings()
    kept, missing = [], []
    for pair in pairs:
        absent = [name for name in pair[1:] if not listings.exists(root / name)]
        if absent:
            missing.append((pair[0], absent))
        else:
            kept.append(pair)
    return kept, missing


@hookimpl
def register_datasets(register):
    """Register ``cvusa`` with cvbench."""
    register("cvusa", CVUSA, summary="CVUSA (CVM-Net/SAFA subset): centred panoramas vs Bing tiles, USA-wide")
