"""Limited field of view and unknown orientation: what a ground query sees of its panorama.

The cross-view literature beyond the thesis evaluates queries that are not
full north-aligned panoramas: a camera with a field of view of 180, 90 or
70 degrees (DSM, Shi et al. CVPR 2020), facing a direction nobody tells the
network. A :class:`FieldOfView` turns the equirectangular panorama (column
c faces azimuth 360 c / W clockwise from north, the panorama convention of
:mod:`cvbench.data.augment`) into such a view: the columns of a ``degrees``
wide window centred on the query's heading.

- ``orientation="known"``: the heading is north (a 360-degree known view is
  the panorama itself, untouched).
- ``orientation="random"``: evaluation gives query i the heading drawn from
  a generator seeded by the run seed and i, so two evaluations of one model
  see the same views and give the same numbers; training and pre-training
  draw a new heading every time an image is loaded, from the global torch
  generator (seeded, and restored on ``--resume``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

ORIENTATIONS = ("known", "random")
FULL_CIRCLE = 360.0
_HEADING_STREAM = 0x9E3779B9  # keeps the evaluation headings apart from every other draw of the run seed


@dataclass(frozen=True)
class FieldOfView:
    """A ``degrees`` wide view of each panorama, facing north or a seeded random heading."""

    degrees: float = FULL_CIRCLE
    orientation: str = "known"
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.degrees, bool) or not isinstance(self.degrees, (int, float)) or not (
                math.isfinite(self.degrees) and 0 < self.degrees <= FULL_CIRCLE):
            raise ValueError(f"the field of view must be a number of degrees in (0, 360], got {self.degrees!r}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {self.orientation!r}")

    @property
    def is_identity(self) -> bool:
        """The whole panorama, north at column 0: no view to cut."""
        return self.degrees == FULL_CIRCLE and self.orientation == "known"

    def width(self, panorama_width: int) -> int:
        """Columns of the view cut from a panorama ``panorama_width`` columns wide (at least 1)."""
        return max(1, round(panorama_width * self.degrees / FULL_CIRCLE))

    def heading(self, index: int) -> float:
        """The heading, in degrees clockwise from north, of evaluation query ``index``."""
        if self.orientation == "known":
            return 0.0
        return float(np.random.default_rng([self.seed, _HEADING_STREAM, int(index)]).uniform(0.0, FULL_CIRCLE))

    def training_heading(self) -> float:
        """A heading for one training load: north when known, else a fresh draw of the torch generator."""
        return 0.0 if self.orientation == "known" else float(torch.rand(()) * FULL_CIRCLE)

    def cut(self, panorama: torch.Tensor, heading: float) -> torch.Tensor:
        """The view of a ``(C, H, W)`` panorama facing ``heading``: the columns of the window centred on it."""
        if self.is_identity:
            return panorama
        full = panorama.shape[-1]
        width = self.width(full)
        centre = heading / FULL_CIRCLE * full
        first = math.floor(centre - width / 2 + 0.5)
        columns = torch.arange(first, first + width) % full
        return panorama.index_select(-1, columns)

    def for_evaluation(self, panorama: torch.Tensor, index: int) -> torch.Tensor:
        """Evaluation query ``index``'s view: the same on every evaluation of the run."""
        return panorama if self.is_identity else self.cut(panorama, self.heading(index))

    def for_training(self, panorama: torch.Tensor) -> torch.Tensor:
        """A training view: north-facing when the orientation is known, else facing a fresh random heading."""
        return panorama if self.is_identity else self.cut(panorama, self.training_heading())
