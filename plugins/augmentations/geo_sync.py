"""``geo-sync``: flips and quarter turns applied to both views so a pair stays consistent.

A horizontal flip of the tile mirrors the world east-west, so the panorama is
mirrored too; a 90-degree turn of the tile shifts every azimuth by 90 degrees,
so the panorama rolls by a quarter of its width. Valid for centre-aligned and
offset layouts alike (the query stays on its tile), unlike random crops.
"""

from __future__ import annotations

import torch

from cvbench import Augmentation
from cvbench.contract.hookspecs import hookimpl
from cvbench.data.augment import mirror_panorama, rotate_pair, to_float


class GeoSync(Augmentation):
    """Random mirror (p = ``flip_p``) then a uniform random quarter turn, on both views."""

    def __init__(self, ground_size: tuple[int, int], aerial_size: tuple[int, int],
                 flip_p: float = 0.5, rotate: bool = True) -> None:
        if ground_size[1] % 4 and rotate:
            raise ValueError(f"geo-sync needs a panorama width divisible by 4, got {ground_size[1]}")
        if aerial_size[0] != aerial_size[1] and rotate:
            raise ValueError(f"geo-sync turns the tile, so it must be square, got {aerial_size}")
        self.flip_p = float(flip_p)
        self.rotate = bool(rotate)
        self.convert = to_float()

    def __call__(self, pano: torch.Tensor, tile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if float(torch.rand(())) < self.flip_p:
            pano, tile = mirror_panorama(pano), torch.flip(tile, dims=[-1])
        if self.rotate:
            pano, tile = rotate_pair(pano, tile, int(torch.randint(0, 4, ())))
        return self.convert(pano), self.convert(tile)


@hookimpl
def register_augmentations(register):
    register("geo-sync", GeoSync, summary="flip and 90-degree turns applied to both views consistently")
