"""The ``university1652`` dataset plugin: University-1652's drone, satellite and street views of buildings.

University-1652 (Zheng, Wei and Yang, "University-1652: A Multi-view
Multi-source Benchmark for Drone-based Geo-localization", ACM MM 2020)
shows 1,652 university buildings from a drone circling each one (54 views),
from a satellite (one view) and from the street. 701 buildings train, 951
test: the 701 test buildings are queried, and the galleries hold all 951, so
250 buildings are distractors. Read exactly as its authors distribute it
(the ``University-Release`` folder); each image's building is its folder.

Protocols (splits):

- ``drone2sat``: a drone view queries the 951 satellite images; one is correct.
- ``sat2drone``: a satellite image queries the drone views of the 951
  buildings; all 54 of its building's views are correct (AP matters here).
- ``street2sat``: a street view queries the 951 satellite images.

Training pairs each drone (or street) view of a training building with that
building's satellite image. The drone views are ordinary photos, not
panoramas (``ground_view = "image"``): the ground branch takes them square,
and ``--fov`` / ``--orientation`` do not apply. The release carries no
coordinates per image, so the metre metrics report nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvbench.contract import Dataset
from cvbench.contract.hookspecs import hookimpl
from cvbench.data import CrossViewPairs, FileImages
from cvbench.data.layout import folder_names, path_is, require_layout
from cvbench.data.problems import Problem, report_problem, report_skipped
from cvbench.errors import SpecError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# split -> (training query folder, test query folder, test gallery folder, query view)
PROTOCOLS = {
    "drone2sat": ("train/drone", "test/query_drone", "test/gallery_satellite", "ground"),
    "sat2drone": ("train/drone", "test/query_satellite", "test/gallery_drone", "aerial"),
    "street2sat": ("train/street", "test/query_street", "test/gallery_satellite", "ground"),
}
TRAIN_SATELLITE = "train/satellite"
FOLDERS = ("train/drone", "train/street", "train/satellite", "test/query_drone", "test/gallery_drone",
           "test/query_satellite", "test/gallery_satellite", "test/query_street", "test/gallery_street")

LAYOUT = """\
ROOT/                          the University-Release folder
  train/drone/<building>/      image-01.jpeg ... image-54.jpeg (701 buildings)
  train/street/<building>/     street views (*.jpg)
  train/satellite/<building>/  <building>.jpg, one image
  train/google/<building>/     (not used)
  test/query_drone/<building>/       701 buildings     test/gallery_drone/<building>/       951 buildings
  test/query_satellite/<building>/   701 buildings     test/gallery_satellite/<building>/   951 buildings
  test/query_street/<building>/      701 buildings     test/gallery_street/<building>/
"""

SOURCE = """\
University-1652 is obtained from its authors (https://github.com/layumi/University1652-Baseline: fill in the \
request form for the download link); unzip University-Release.zip and pass the University-Release folder as \
--data-root ROOT.
"""


@dataclass(frozen=True)
class Folder:
    """One view folder: its buildings in name order, and each building's images in name order."""

    path: Path
    images: dict[str, list[Path]]

    @property
    def buildings(self) -> list[str]:
        return list(self.images)

    def count(self) -> int:
        return sum(len(paths) for paths in self.images.values())


def read_folder(root: Path, name: str) -> Folder:
    """The buildings of ``root/name`` and their images; an empty building folder is reported and left out."""
    path = root / name
    images, empty = {}, []
    for building in sorted(folder_names(path)):
        if not path_is(Path.is_dir, path / building):
            continue
        files = sorted(path / building / file for file in folder_names(path / building)
                       if Path(file).suffix.lower() in IMAGE_SUFFIXES)
        if files:
            images[building] = files
        else:
            empty.append(Problem(str(path / building), "holds no image (expected .jpg, .jpeg or .png); building "
                                 "left out", fatal=False))
    report_skipped(f"University-1652 {name} building folders without images", empty)
    return Folder(path, images)


class University1652(Dataset):
    """University-1652's three protocols: ``drone2sat`` (default), ``sat2drone`` and ``street2sat``.

    Metadata: ``building``, each image's building id. No options.
    """

    ground_view = "image"

    def __init__(self, root: Path | str | None = None, **options: Any) -> None:
        if options:
            raise SpecError(f"the university1652 dataset takes no options, got: {', '.join(sorted(options))}")
        self.root = require_layout("University-1652", root, FOLDERS, LAYOUT, SOURCE).absolute()
        self._folders: dict[str, Folder] = {}

    def splits(self) -> list[str]:
        """``["drone2sat", "sat2drone", "street2sat"]``: the benchmark's drone and street protocols."""
        return list(PROTOCOLS)

    @staticmethod
    def image_sizes() -> dict[str, tuple[int, int]]:
        """The authors' baseline input: 256x256 for drone, street and satellite views alike."""
        return {"ground": (256, 256), "aerial": (256, 256)}

    def folder(self, name: str) -> Folder:
        """A view folder, listed once."""
        if name not in self._folders:
            self._folders[name] = read_folder(self.root, name)
        return self._folders[name]

    def inventory(self) -> dict[str, str]:
        """Buildings and images in every folder the protocols read (``cvbench data check`` prints it)."""
        return {name: f"{len(self.folder(name).buildings)} buildings, {self.folder(name).count()} images"
                for name in FOLDERS}

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """Training pairs (each view with its building's satellite image) or the split's test protocol."""
        train_queries, test_queries, test_gallery, view = PROTOCOLS[split]
        if subset == "train":
            return self._training_pairs(self.folder(train_queries), self._satellite(TRAIN_SATELLITE))
        queries = self.folder(test_queries)
        gallery = self.folder(test_gallery) if view == "aerial" else self._satellite(test_gallery)
        return self._protocol(queries, gallery, view)

    def _satellite(self, name: str) -> Folder:
        """A satellite folder, each building's one image (``<building>.jpg``; another single file is accepted)."""
        folder = self.folder(name)
        images = {}
        for building, paths in folder.images.items():
            own = [path for path in paths if path.stem == building]
            if len(paths) > 1 and len(own) != 1:
                report_problem(folder.path / building, f"holds {len(paths)} images; a satellite folder holds one, "
                               f"{building}.jpg")
                continue
            images[building] = own or paths
        return Folder(folder.path, images)

    def _training_pairs(self, views: Folder, satellite: Folder) -> CrossViewPairs:
        """Each view of a training building with its building's satellite image (the gallery: one per building)."""
        lonely = [Problem(str(views.path / b), f"has no satellite image in {satellite.path / b}; its "
                          f"{len(views.images[b])} views are left out", fatal=False)
                  for b in views.buildings if b not in satellite.images]
        report_skipped("University-1652 training buildings without a satellite image", lonely)
        buildings = [b for b in satellite.buildings]
        index = {b: i for i, b in enumerate(buildings)}
        ground = [(b, path) for b in views.buildings if b in index for path in views.images[b]]
        if not ground and views.buildings:
            report_problem(views.path, f"none of its buildings has a satellite image in {satellite.path}; expected "
                                       "the same building folders in both")
        elif not ground:
            report_problem(views.path, "holds no building folder with images; expected <building>/<image>.jpg")
        return CrossViewPairs(
            ground=FileImages([path for _, path in ground]),
            aerial=FileImages([satellite.images[b][0] for b in buildings]),
            positives=np.array([index[b] for b, _ in ground], dtype=np.int64),
            ground_meta=pd.DataFrame({"building": [b for b, _ in ground]}),
            aerial_meta=pd.DataFrame({"building": buildings}))

    def _protocol(self, queries: Folder, gallery: Folder, view: str) -> CrossViewPairs:
        """The test queries against the whole gallery, distractor buildings included; every view of the
        query's building in the gallery is correct."""
        for building in queries.buildings:
            if building not in gallery.images:
                report_problem(queries.path / building, f"building {building} is queried but "
                               f"{gallery.path / building} does not exist: query and gallery folders disagree")
        gallery_items = [(b, path) for b in gallery.buildings for path in gallery.images[b]]
        first, correct = {}, {}
        for position, (building, _) in enumerate(gallery_items):
            first.setdefault(building, position)
            correct.setdefault(building, []).append(position)
        query_items = [(b, path) for b in queries.buildings if b in gallery.images for path in queries.images[b]]
        if not queries.buildings:
            report_problem(queries.path, "holds no building folder with images; expected <building>/<image>.jpg")
        widest = max((len(correct[b]) for b, _ in query_items), default=1)
        also = np.full((len(query_items), widest - 1), -1, dtype=np.int64)
        for row, (building, _) in enumerate(query_items):
            others = correct[building][1:]
            also[row, :len(others)] = others
        query_images = FileImages([path for _, path in query_items])
        gallery_images = FileImages([path for _, path in gallery_items])
        query_meta = pd.DataFrame({"building": [b for b, _ in query_items]})
        gallery_meta = pd.DataFrame({"building": [b for b, _ in gallery_items]})
        ground, aerial = (query_images, gallery_images) if view == "ground" else (gallery_images, query_images)
        ground_meta, aerial_meta = (query_meta, gallery_meta) if view == "ground" else (gallery_meta, query_meta)
        return CrossViewPairs(
            ground=ground, aerial=aerial, positives=np.array([first[b] for b, _ in query_items], dtype=np.int64),
            ground_meta=ground_meta, aerial_meta=aerial_meta, also_correct=also if widest > 1 else None,
            query_view=view)


@hookimpl
def register_datasets(register):
    """Register ``university1652`` with cvbench."""
    register("university1652", University1652,
             summary="University-1652: drone/street views vs satellite images of 1,652 buildings (drone2sat, ...)")
