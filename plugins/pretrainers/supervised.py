"""``supervised``: an offline stand-in for ImageNet weights (Table 3.1's "ImageNet" and its starred rows).

The thesis starts most branches from ImageNet classification weights. They
cannot be downloaded everywhere, so this pretrainer plays their role on
data cvbench has: the backbone learns, with labels, to classify images of
another domain. The synthetic study runs it on the ``shapes`` dataset
(``label_column="category"``: drawn objects and textures, out of the domain
of both views, as ImageNet is); its old, in-domain use classifies the
synthetic world's ``scene`` label (road, building, vegetation, water,
plaza) of cities the evaluation never sees, a label read from the aerial
view. Run it as a ``cvbench pretrain`` and pass that run folder as
``--base-init`` / ``--pretrain-from``; the benchmark grids do exactly that.

Like ImageNet training: global average pooling, a linear classifier,
cross-entropy, random resized crops (of the image's own aspect) and flips. Both views of an image are
classified (the engine hands every pretrainer two views).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from cvbench import Pretrainer
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float
from cvbench.data.augment import Transform, resized_crop, to_float


class Supervised(Pretrainer):
    """Classify each image's ``label_column`` class from the backbone's pooled features.

    ``classes`` (the sorted class names) is given by the engine, read from the
    dataset's metadata column ``label_column``; ``min_crop`` is the smallest
    crop area kept by the random resized crop.
    """

    label_column = "scene"

    def __init__(self, backbone: nn.Module, feature_dim: int, *, classes: Sequence[str],
                 label_column: str = "scene", min_crop: float = 0.35) -> None:
        super().__init__()
        if len(classes) < 2:
            raise ValueError(f"supervised pre-training needs at least 2 classes, got {list(classes)}")
        self.backbone = backbone
        self.classes = list(classes)
        self.label_column = label_column
        self.min_crop = require_float("supervised", "min_crop", min_crop, low=0.0, high=1.0, low_open=True)
        self.classifier = nn.Linear(feature_dim, len(self.classes))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, classes)`` of a batch of images."""
        return self.classifier(self.backbone(images).mean(dim=(2, 3)))

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of both views against the images' class indices."""
        return (F.cross_entropy(self.logits(view1).float(), labels) +
                F.cross_entropy(self.logits(view2).float(), labels)) / 2

    def after_step(self) -> None:
        """Nothing to update between steps."""

    def augmentations(self, image_size: tuple[int, int]) -> tuple[Transform, Transform]:
        """Random resized crop (area ``min_crop``..1) and horizontal flip, then floats in [0, 1]."""
        recipe = v2.Compose([
            resized_crop(image_size, (self.min_crop, 1.0)),
            v2.RandomHorizontalFlip(),
            to_float(),
        ])
        return recipe, recipe


@hookimpl
def register_pretrainers(register: Register) -> None:
    register("supervised", Supervised,
             summary="offline ImageNet stand-in: classify the dataset's labelled images of other places")
