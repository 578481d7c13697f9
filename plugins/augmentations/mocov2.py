"""MoCov2's augmentation (thesis appendix 6.2) applied to each view of a fine-tuning pair.

Exp 31 fine-tunes with the full recipe; exp 32 drops the random crop, which
destroys the alignment of a panorama with its tile (``mocov2-nocrop``). The
two views are augmented independently, as the thesis did.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

from cvbench.hookspecs import hookimpl


def _blur_kernel(image_size: tuple[int, int], sigma_max: float) -> int:
    """Odd kernel wide enough for ``sigma_max`` (3 sigma each side) but no wider than the image."""
    wanted = 2 * math.ceil(3 * sigma_max) + 1
    fits = min(image_size)
    fits = fits if fits % 2 == 1 else fits - 1
    return max(3, min(wanted, fits))


def mocov2_augmentation(image_size: tuple[int, int], crop: bool = True) -> v2.Compose:
    """The MoCov2 recipe of appendix 6.2 with torchvision transforms v2.

    RandomResizedCrop (scale 0.2-1), ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
    RandomGrayscale p 0.2, GaussianBlur sigma 0.1-2 with p 0.5, horizontal flip.
    Maps a uint8 ``(3, H, W)`` tensor to float in [0, 1]. ``crop=False`` drops the crop.
    """
    ops: list = []
    if crop:
        ops.append(v2.RandomResizedCrop(tuple(image_size), scale=(0.2, 1.0), antialias=True))
    ops += [
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(_blur_kernel(image_size, 2.0), sigma=(0.1, 2.0))], p=0.5),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
    ]
    return v2.Compose(ops)


class MoCoV2PairAugmentation:
    """Each view of a pair through its own MoCov2 augmentation, independently."""

    def __init__(self, ground_size: tuple[int, int], aerial_size: tuple[int, int], crop: bool = True) -> None:
        self.ground = mocov2_augmentation(ground_size, crop=crop)
        self.aerial = mocov2_augmentation(aerial_size, crop=crop)

    def __call__(self, pano: torch.Tensor, tile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ground(pano), self.aerial(tile)


def without_crop(ground_size: tuple[int, int], aerial_size: tuple[int, int]) -> MoCoV2PairAugmentation:
    """Exp 32: MoCov2's augmentation without random cropping and resizing."""
    return MoCoV2PairAugmentation(ground_size, aerial_size, crop=False)


@hookimpl
def register_augmentations(register):
    register("mocov2", MoCoV2PairAugmentation, summary="MoCov2 augmentation on each view (exp 31)")
    register("mocov2-nocrop", without_crop, summary="MoCov2 augmentation without the random crop (exp 32)")
