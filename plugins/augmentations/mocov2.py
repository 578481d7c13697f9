"""MoCov2's augmentation (thesis appendix 6.2), for pre-training views and for fine-tuning pairs.

Exp 31 fine-tunes with the full recipe; exp 32 drops the random crop, which
destroys the alignment of a panorama with its tile (``mocov2-nocrop``). In a
fine-tuning pair the photometric parts (colour jitter, grayscale, blur) and
the crop, where enabled, are drawn independently for each view, but the
horizontal flip is one coin for the pair: flipping only one view would turn
the panorama's east into the tile's west, teaching the network a geometry
that contradicts every other pair. A flipped pair mirrors the world
east-west: the panorama by :func:`cvbench.augment.mirror_panorama`, the tile
left-right. Pre-training views are single-branch, so there each view keeps
its own flip.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from cvbench.augment import gaussian_blur, mirror_panorama, resized_crop
from cvbench.hookspecs import hookimpl


def mocov2_augmentation(image_size: tuple[int, int], crop: bool = True, flip: bool = True) -> v2.Compose:
    """The MoCov2 recipe of appendix 6.2 with torchvision transforms v2.

    RandomResizedCrop (scale 0.2-1), ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
    RandomGrayscale p 0.2, GaussianBlur sigma 0.1-2 px at 224 px (scaled to
    ``image_size`` by :func:`cvbench.augment.gaussian_blur`) with p 0.5,
    horizontal flip. Maps a uint8 ``(3, H, W)`` tensor to float in [0, 1].
    ``crop=False`` drops the crop, ``flip=False`` the flip.
    """
    ops: list = []
    if crop:
        ops.append(resized_crop(image_size, (0.2, 1.0)))
    ops += [
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([gaussian_blur(image_size, sigma=(0.1, 2.0))], p=0.5),
    ]
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    ops.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(ops)


def mirror_pair(pano: torch.Tensor, tile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same east-west mirror of the world on both views: azimuth a -> -a, tile flipped left-right."""
    return mirror_panorama(pano), torch.flip(tile, dims=[-1])


class MoCoV2PairAugmentation:
    """One shared flip (p 0.5) for the pair, then each view through its own flip-free MoCov2 recipe."""

    flip_p = 0.5

    def __init__(self, ground_size: tuple[int, int], aerial_size: tuple[int, int], crop: bool = True) -> None:
        self.ground = mocov2_augmentation(ground_size, crop=crop, flip=False)
        self.aerial = mocov2_augmentation(aerial_size, crop=crop, flip=False)

    def __call__(self, pano: torch.Tensor, tile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if float(torch.rand(())) < self.flip_p:
            pano, tile = mirror_pair(pano, tile)
        return self.ground(pano), self.aerial(tile)


def without_crop(ground_size: tuple[int, int], aerial_size: tuple[int, int]) -> MoCoV2PairAugmentation:
    """Exp 32: MoCov2's augmentation without random cropping and resizing."""
    return MoCoV2PairAugmentation(ground_size, aerial_size, crop=False)


@hookimpl
def register_augmentations(register):
    register("mocov2", MoCoV2PairAugmentation,
             summary="MoCov2 augmentation on each view, one flip for the pair (exp 31)")
    register("mocov2-nocrop", without_crop, summary="MoCov2 augmentation without the random crop (exp 32)")
