"""The augmentation kind: a transform of each fine-tuning pair (thesis section 3.4.2)."""

from __future__ import annotations

import abc

import torch


class Augmentation(abc.ABC):
    """Base class of a fine-tuning pair augmentation (``--finetune-aug NAME``).

    Built as ``factory(ground_size, aerial_size, **options)`` with the two
    branches' ``(H, W)`` image sizes. A geometric augmentation must move both
    views alike (a flipped panorama needs a flipped tile) or it breaks the
    pair's correspondence.
    """

    @abc.abstractmethod
    def __call__(self, panorama: torch.Tensor, tile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 ``(3, H, W)`` panorama and tile, already at the branch sizes -> both as float in [0, 1]."""
