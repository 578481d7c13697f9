"""Geometry of the two views, shared by augmentations and datasets.

Augmentations take a uint8 tensor ``(3, H, W)`` already resized to the
branch's image size and return a float tensor ``(3, H, W)`` in [0, 1]; the
engine normalises afterwards. Panoramas follow one convention everywhere:
column 0 faces north and column ``c`` faces azimuth ``360 * c / W`` degrees,
clockwise (column ``W / 4`` faces east); aerial tiles are north up.
"""

from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms import v2

Transform = Callable[[torch.Tensor], torch.Tensor]


def to_float() -> Transform:
    """uint8 -> float in [0, 1]; the identity augmentation."""
    return v2.ToDtype(torch.float32, scale=True)


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
