"""BYOL: bootstrap your own latent (Grill et al. 2020), thesis section 2.2.2.

Online network = backbone + projector g_theta + predictor q_theta; target
network = momentum copies of backbone and projector, moved by eq 2.4 with
BYOL's cosine schedule of the rate. Loss = eq 2.2 on both view orders:
``L = ||q(z_1)/|q(z_1)| - z'_2/|z'_2| ||^2 + (views swapped)``, no negatives.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.transforms import v2

from cvbench import Pretrainer
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.data.augment import Transform, gaussian_blur, resized_crop
from cvbench.nn import cosine_momentum, ema_update, momentum_copy

from .cosine_losses import normalized_mse
from .projection import byol_mlp, byol_projector


def byol_augmentation(image_size: tuple[int, int], blur_p: float, solarize_p: float) -> Transform:
    """One of BYOL's two image transforms (Grill et al. 2020, table 6), uint8 (3, H, W) -> float in [0, 1].

    Random resized crop (area 0.08-1), horizontal flip, colour jitter
    (0.4, 0.4, 0.2, 0.1) with p 0.8, grayscale p 0.2, Gaussian blur
    (sigma 0.1-2 px at 224 px, scaled to ``image_size``; kernel 10% of the
    shorter side, 23 at 224 as in the paper) with p ``blur_p``,
    solarisation (pixels >= 0.5 inverted) with p ``solarize_p``.
    """
    return v2.Compose(
        [
            resized_crop(image_size, (0.08, 1.0)),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([gaussian_blur(image_size, sigma=(0.1, 2.0), kernel_fraction=0.1)], p=blur_p),
            v2.RandomSolarize(threshold=128, p=solarize_p),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


class BYOL(Pretrainer):
    """BYOL around ``backbone`` (images (B, 3, H, W) -> feature maps (B, feature_dim, h, w)).

    The target's rate follows ``tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2``
    over ``K = total_steps`` optimizer steps, counted by ``after_step``; the
    engine does not announce K, so ``total_steps = 0`` (default) keeps the rate
    at ``momentum`` = tau_base throughout. The step count is a buffer, so a
    resumed run continues the schedule.
    """

    step: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        momentum: float = 0.996,
        total_steps: int = 0,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        pred_hidden: int = 4096,
    ) -> None:
        super().__init__()
        feature_dim = require_int("byol", "feature_dim", feature_dim, minimum=1)
        self.momentum = require_float("byol", "momentum", momentum, low=0.0, high=1.0)
        self.total_steps = require_int("byol", "total_steps", total_steps, minimum=0)
        proj_hidden = require_int("byol", "proj_hidden", proj_hidden, minimum=1)
        proj_dim = require_int("byol", "proj_dim", proj_dim, minimum=1)
        pred_hidden = require_int("byol", "pred_hidden", pred_hidden, minimum=1)

        self.backbone = backbone
        self.projector = byol_projector(feature_dim, proj_hidden, proj_dim)
        self.predictor = byol_mlp(proj_dim, pred_hidden, proj_dim)
        self.target_backbone = momentum_copy(backbone)
        self.target_projector = momentum_copy(self.projector)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._host_step: int | None = None  # a host copy of `step`: reading the buffer each step would stall a GPU

    def _online(self, view: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(self.backbone(view)))

    @torch.no_grad()
    def _target(self, view: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_backbone(view))

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Symmetrised loss ``L + L~`` of thesis section 2.2.2, each term eq 2.2; in [0, 8]."""
        return normalized_mse(self._online(view1), self._target(view2)) + normalized_mse(
            self._online(view2), self._target(view1)
        )

    def current_momentum(self) -> float:
        """The rate tau_k the next ``after_step`` will use."""
        if self.total_steps <= 0:
            return self.momentum
        if self._host_step is None:  # once after construction or loading a state
            self._host_step = int(self.step)
        return cosine_momentum(self._host_step, self.total_steps, self.momentum)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._host_step = None

    @torch.no_grad()
    def after_step(self) -> None:
        """Move the target network with rate tau_k (eq 2.4), then advance k."""
        rate = self.current_momentum()
        ema_update(self.target_backbone, self.backbone, rate)
        ema_update(self.target_projector, self.projector, rate)
        self.step += 1
        if self._host_step is not None:
            self._host_step += 1

    def augmentations(self, image_size: tuple[int, int]) -> tuple[Transform, Transform]:
        """BYOL's asymmetric pair: view 1 always blurred, never solarised; view 2 blurred p 0.1, solarised p 0.2."""
        return byol_augmentation(image_size, blur_p=1.0, solarize_p=0.0), byol_augmentation(
            image_size, blur_p=0.1, solarize_p=0.2
        )


@hookimpl
def register_pretrainers(register: Register) -> None:
    register("byol", BYOL, summary="BYOL: online predictor regresses a momentum target, no negatives (thesis 2.2.2)")
