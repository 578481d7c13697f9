"""Geometry of the two views and the shared augmentation recipes, for augmentations, pretrainers and datasets.

Augmentations take a uint8 tensor ``(3, H, W)`` already resized to the
branch's image size and return a float tensor ``(3, H, W)`` in [0, 1]; the
engine normalises afterwards. Panoramas follow one convention everywhere:
column 0 faces north and column ``c`` faces azimuth ``360 * c / W`` degrees,
clockwise (column ``W / 4`` faces east); aerial tiles are north up.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torchvision.transforms import v2

Transform = Callable[[torch.Tensor], torch.Tensor]


def to_float() -> Transform:
    """uint8 -> float in [0, 1]; the identity augmentation."""
    return v2.ToDtype(torch.float32, scale=True)


def scaled_sigma(image_size: tuple[int, int], sigma: tuple[float, float], reference: int = 224) -> tuple[float, float]:
    """A blur's sigma range, given in pixels of a ``reference``-px crop, rescaled to ``image_size`` (H, W).

    Recipes such as MoCov2's and BYOL's give the blur in pixels of 224 px
    ImageNet crops; what they mean is a fraction of the image, so on a 64 px
    tile the same pixel sigma would blur 3.5 times harder. The factor is the
    shorter side over ``reference``, so a 32 x 128 panorama scales by 32 / 224.
    """
    scale = min(image_size) / reference
    return sigma[0] * scale, sigma[1] * scale


def largest_odd(side: int) -> int:
    """The largest odd number <= ``side``: the widest blur kernel that fits an image side."""
    return side if side % 2 else side - 1


def gaussian_blur(
    image_size: tuple[int, int],
    sigma: tuple[float, float] = (0.1, 2.0),
    reference: int = 224,
    kernel_fraction: float | None = None,
) -> v2.GaussianBlur:
    """A Gaussian blur of sigma ``sigma`` px at ``reference`` px, scaled to ``image_size`` (see :func:`scaled_sigma`).

    The kernel is odd and, by default, covers 3 scaled sigma_max on each side
    (beyond that the Gaussian weighs < 0.3%); ``kernel_fraction`` instead sets
    it to that fraction of the shorter side (BYOL's 10%, 23 px at 224). Either
    way it is at least 3 and at most the shorter side rounded down to odd.
    """
    low, high = scaled_sigma(image_size, sigma, reference)
    side = min(image_size)
    if kernel_fraction is None:
        wanted = 2 * math.ceil(3 * high) + 1
    else:
        wanted = round(kernel_fraction * side) // 2 * 2 + 1
    kernel = max(3, min(wanted, largest_odd(side)))
    return v2.GaussianBlur(kernel, sigma=(low, high))


def resized_crop(image_size: tuple[int, int], scale: tuple[float, float]) -> v2.RandomResizedCrop:
    """A random resized crop whose aspect range (3/4 to 4/3) is relative to the image's own shape.

    torchvision's default range is relative to a square: on a 32x128
    panorama no crop of a square-ish shape and a useful area fits, and the
    transform falls back to one fixed centre crop every time. Scaling the
    range by ``W / H`` keeps the recipe's intent (crops about the shape of the
    image, of ``scale`` of its area) for any image; a square image gets
    exactly torchvision's default.
    """
    height, width = image_size
    aspect = width / height
    return v2.RandomResizedCrop(list(image_size), scale=scale, ratio=(3 / 4 * aspect, 4 / 3 * aspect), antialias=True)


def mocov2_augmentation(image_size: tuple[int, int], crop: bool = True, flip: bool = True) -> v2.Compose:
    """The MoCov2 recipe of appendix 6.2 with torchvision transforms v2.

    RandomResizedCrop (scale 0.2-1), ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
    RandomGrayscale p 0.2, GaussianBlur sigma 0.1-2 px at 224 px (scaled to
    ``image_size`` by :func:`cvbench.data.augment.gaussian_blur`) with p 0.5,
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


def mirror_panorama(pano: torch.Tensor) -> torch.Tensor:
    """Mirror a panorama east-west: azimuth a -> -a, so column c -> (W - c) mod W."""
    return torch.roll(torch.flip(pano, dims=[-1]), shifts=1, dims=-1)


def rotate_pair(pano: torch.Tensor, tile: torch.Tensor, quarter_turns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the tile counter-clockwise by ``quarter_turns`` x 90 degrees and roll the panorama to match.

    After a counter-clockwise turn the old east faces north, so every azimuth
    drops by 90 degrees: the panorama rolls left by a quarter of its width.
    Needs a panorama width divisible by 4 to stay exact.
    """
    k = quarter_turns % 4
    width = pano.shape[-1]
    if width % 4:
        raise ValueError(f"geo-sync rotation needs a panorama width divisible by 4, got {width}")
    return torch.roll(pano, shifts=-k * width // 4, dims=-1), torch.rot90(tile, k=k, dims=(-2, -1))
