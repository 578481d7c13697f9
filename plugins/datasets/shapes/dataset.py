"""The ``shapes`` dataset: procedurally drawn objects and textures, an out-of-domain stand-in for ImageNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvbench.contract import Dataset
from cvbench.data import ArrayImages, CrossViewPairs

from .options import ShapesOptions
from .render import render_subset

SPLIT = "objects"


class Shapes(Dataset):
    """Labelled pictures of objects and textures, for supervised pre-training away from the target domain.

    ImageNet weights give a backbone generic visual features (edges, blobs,
    outlines, repeated patterns) learned with labels on photographs of
    *things*, not of streets or of the ground from above. cvbench cannot
    download them, and pre-training on its own synthetic cities would teach
    aerial knowledge ImageNet does not have. This dataset plays ImageNet's
    role honestly: its classes (see :data:`~.draw.CLASS_NAMES`: disc, stripes,
    square, checkerboard, triangle, dots, ring, grid, cross, zigzag, star,
    crescent) are neither aerial nor street scenes, and no label comes from
    an aerial view. Colours, lighting, position, scale, rotation and period
    are drawn independently of the class, so a classifier must learn shape.

    One split, ``objects``, with ``train`` and ``val`` subsets. Item ``i`` is
    one object (or texture) drawn twice, independently: the ``ground`` image
    at ``ground_size`` and the ``aerial`` image at ``aerial_size``, so
    ``positives[i] == i`` (no semi-positives). Both metadata frames have
    ``category`` (the class name) and ``item`` (i); pre-train with
    ``--pretrainer supervised --pretrain-option label_column=category``.

    ``root`` is ignored: nothing is read from or written to disk; images are
    generated in memory on first ``load`` (a second or two for the defaults),
    byte-identical for the same options on any machine. Options (keyword;
    strings are coerced):

    - ``seed`` (0): every random draw derives from it (and the subset and item).
    - ``train_images`` (4000), ``val_images`` (1000): items per subset.
    - ``ground_size`` ((32, 128)), ``aerial_size`` ((64, 64)): "HxW", a pair, or one integer.
    - ``classes`` (12, all): use the first ``classes`` names of the list above (at least 2);
      items cycle through them, so the classes are balanced.
    """

    def __init__(self, root: Path | str | None = None, **options: Any) -> None:
        self.options = ShapesOptions.parse(options)

    def splits(self) -> list[str]:
        """``["objects"]``."""
        return [SPLIT]

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """The images as generated (``ground_size``, ``aerial_size``)."""
        return {"ground": tuple(self.options.ground_size), "aerial": tuple(self.options.aerial_size)}

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names in use, in label order."""
        return self.options.class_names

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` or ``val`` subset of ``objects``, generated in memory (:meth:`load` keeps it)."""
        ground, aerial, labels = render_subset(self.options, subset)
        meta = pd.DataFrame({"category": np.asarray(self.classes, dtype=object)[labels],
                             "item": np.arange(len(labels), dtype=np.int64)})
        return CrossViewPairs(ArrayImages(ground), ArrayImages(aerial), np.arange(len(labels)), None, meta, meta.copy())
