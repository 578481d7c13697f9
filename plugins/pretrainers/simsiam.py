"""SimSiam: simple Siamese representation learning (Chen & He 2021), thesis section 2.2.2.

One encoder f = backbone + projector serves both views, a predictor h maps
one view's projection to the other's, and the stop-gradient on the target
side is all that prevents collapse; no momentum encoder, no negatives.
Loss ``L = D(p1, z2) / 2 + D(p2, z1) / 2`` with ``D(p, z) = -cos(p, stopgrad(z))``.
SimSiam uses MoCov2's augmentation (its paper, section 4.1).
"""

from __future__ import annotations

import torch
from torch import nn

from cvbench import Pretrainer
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_int
from cvbench.data.augment import Transform, mocov2_augmentation

from .cosine_losses import negative_cosine
from .projection import simsiam_predictor, simsiam_projector


class SimSiam(Pretrainer):
    """SimSiam around ``backbone`` (images (B, 3, H, W) -> feature maps (B, feature_dim, h, w)).

    Widths default to the paper's ResNet-50 values: projector hidden and
    output 2048, predictor bottleneck 512 (a quarter of the output).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        proj_hidden: int = 2048,
        proj_dim: int = 2048,
        pred_hidden: int = 512,
    ) -> None:
        super().__init__()
        feature_dim = require_int("simsiam", "feature_dim", feature_dim, minimum=1)
        proj_hidden = require_int("simsiam", "proj_hidden", proj_hidden, minimum=1)
        proj_dim = require_int("simsiam", "proj_dim", proj_dim, minimum=1)
        pred_hidden = require_int("simsiam", "pred_hidden", pred_hidden, minimum=1)

        self.backbone = backbone
        self.projector = simsiam_projector(feature_dim, proj_hidden, proj_dim)
        self.predictor = simsiam_predictor(proj_dim, pred_hidden)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Symmetric negative cosine loss in [-1, 1]; -1: each prediction points at the other view's projection."""
        z1 = self.projector(self.backbone(view1))
        z2 = self.projector(self.backbone(view2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2

    def after_step(self) -> None:
        """Nothing to update: SimSiam has no momentum encoder and no queue."""

    def augmentations(self, image_size: tuple[int, int]) -> tuple[Transform, Transform]:
        """Two independent draws of the MoCov2 recipe (thesis appendix 6.2), as the SimSiam paper uses."""
        return mocov2_augmentation(image_size), mocov2_augmentation(image_size)


@hookimpl
def register_pretrainers(register: Register) -> None:
    register("simsiam", SimSiam, summary="SimSiam: shared encoder, predictor and stop-gradient, no momentum encoder")
