"""``cvbench data check``: validate a dataset folder without training.

Loads every subset of every protocol while collecting problems (label lines
that do not parse, files that are missing) instead of stopping at the first,
then decodes every image file once. The report has the counts per subset and
each problem with its file and, for label files, its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rich.progress import Progress

from ..errors import CvbenchError, SpecError
from .imagecheck import check_files, image_paths
from .pairs import SUBSETS, CrossViewDataset, empty_subset, load_subset
from .problems import Problem, collect_problems


@dataclass(frozen=True)
class SubsetCount:
    """Size of one subset of one protocol."""

    split: str
    subset: str
    queries: int
    references: int
    semi_positives: bool
    cities: tuple[str, ...]
    query_view: str = "ground"


@dataclass
class CheckReport:
    """What ``data check`` found: counts per subset, and problems (fatal ones are errors)."""

    counts: list[SubsetCount] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    inventory: dict[str, str] = field(default_factory=dict)
    images_checked: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.fatal]


def check_dataset(dataset: CrossViewDataset, splits: Sequence[str] | None = None, images: bool = True,
                  progress: Progress | None = None) -> CheckReport:
    """Load ``splits`` (all by default) collecting every problem, then decode every image once."""
    report = CheckReport()
    with collect_problems() as found:
        report.inventory = dict(dataset.inventory() or {}) if callable(getattr(dataset, "inventory", None)) else {}
    report.problems += found
    files: list[Path] = []
    offered = list(dataset.splits())
    unknown = [split for split in splits or () if split not in offered]
    if unknown:
        raise SpecError(f"--split {', '.join(unknown)}: not a split of this dataset; it offers: {', '.join(offered)}")
    stopped: dict[str, list[str]] = {}  # error message -> the subsets it stopped
    for split in splits or offered:
        for subset in SUBSETS:
            with collect_problems() as found:
                try:
                    pairs = load_subset(dataset, split, subset)
                except CvbenchError as exc:  # what a dataset cannot go on after (a missing folder, a non-UTF-8 file)
                    stopped.setdefault(str(exc), []).append(f"{split}/{subset}")
                    pairs = None
            report.problems += found
            if pairs is None:
                continue
            if pairs.num_queries == 0 and not stopped and not any(p.fatal for p in report.problems):  # else: said why
                report.problems.append(Problem(f"{split}/{subset}", empty_subset(dataset, split, subset)))
            meta = pairs.query_meta
            cities = tuple(sorted(map(str, meta["city"].unique()))) if "city" in meta else ()
            report.counts.append(SubsetCount(split, subset, pairs.num_queries, pairs.num_references,
                                             pairs.semi_positives is not None, cities, pairs.query_view))
            for view in (pairs.ground, pairs.aerial):
                files += image_paths(view) or []
    # a file shared by several protocols stops each of them: one error, naming them all
    report.problems += [Problem(", ".join(where), message) for message, where in stopped.items()]
    if images:
        results = check_files(files, progress=progress)
        report.images_checked = len(results)
        report.problems += [problem for problem in results.values() if problem is not None]
    report.problems = list(dict.fromkeys(report.problems))  # protocols sharing a file report it once
    return report
