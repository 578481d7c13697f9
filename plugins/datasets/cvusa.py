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
from cvbench.data.layout import Listings, require_layout, text_lines
from cvbench.data.problems import Problem, report_problem, report_skipped
from cvbench.errors import SpecError

SPLIT = "val"
SPLIT_FILES = {"train": "splits/train-19zl.csv", "val": "splits/val-19zl.csv"}
IMAGE_FOLDERS = ("bingmap/19", "streetview/panos")
FIELDS = 3

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
    image files are missing are skipped with a warning; a line without three
    comma-separated fields is reported with its file and line. No options.
    """

    def __init__(self, root: Path | str | None = None, **options: Any) -> None:
        if options:
            raise SpecError(f"the cvusa dataset takes no options, got: {', '.join(sorted(options))}")
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
        pairs = parse_split_file(path)
        kept, missing = present_pairs(self.root, pairs)
        report_skipped(f"CVUSA {SPLIT} {subset} pairs whose image files are missing", [
            Problem(str(path), f"missing image {', '.join(str(self.root / name) for name in names)}; pair skipped",
                    line) for line, names in missing])
        aerial = [self.root / tile for _, tile, _ in kept]
        ground = [self.root / pano for _, _, pano in kept]
        return CrossViewPairs(
            ground=FileImages(ground), aerial=FileImages(aerial), positives=np.arange(len(kept)),
            ground_meta=pd.DataFrame({"name": [p.stem for p in ground]}),
            aerial_meta=pd.DataFrame({"name": [p.stem for p in aerial]}))


def parse_split_file(path: Path) -> list[tuple[int, str, str]]:
    """(line, aerial path, ground path) of each well-formed line of a ``*-19zl.csv`` file.

    A line without exactly three non-empty fields is reported and left out.
    """
    pairs = []
    for line, text in text_lines(path):
        fields = [field.strip() for field in text.split(",")]
        if len(fields) != FIELDS or not all(fields[:2]):
            report_problem(path, "expected 3 comma-separated fields, the first two non-empty (bingmap/19/ID.jpg,"
                                 f"streetview/panos/ID.jpg,streetview/annotations/ID.png), got {text!r}", line=line)
            continue
        pairs.append((line, fields[0], fields[1]))
    return pairs


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
