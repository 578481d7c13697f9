"""MoCov2's augmentation (thesis appendix 6.2) of fine-tuning pairs, exp 31 and 32.

The single-view recipe, which the pretrainers use too, is
:func:`cvbench.data.augment.mocov2_augmentation`.

Exp 31 fine-tunes with the full recipe; exp 32 drops the random crop, which
destroys the alignment of a panorama with its tile (``mocov2-nocrop``). In a
fine-tuning pair the photometric parts (colour jitter, grayscale, blur) and
the crop, where enabled, are drawn independently for each view, but the
horizontal flip is one coin for the pair: flipping only one view would turn
the panorama's east into the tile's west, teaching the network a geometry
that contradicts every other pair. A flipped pair mirrors the world
east-west: the panorama by :func:`cvbench.data.augment.mirror_panorama`, the tile
left-right. Pre-training views are single-branch, so there each view keeps
its own flip.
"""

from __future__ import annotations

import torch

from cvbench import Augmentation
from cvbench.contract.hookspecs import hookimpl
from cvbench.data.augment import mirror_panorama, mocov2_augmentation


def mirror_pair(pano: torch.Tensor, tile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same east-west mirror of the world on both views: azimuth a -> -a, tile flipped left-right."""
    return mirror_panorama(pano), torch.flip(tile, dims=[-1])


class MoCoV2PairAugmentation(Augmentation):
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
