"""The maxpool head: the strongest response of each channel, then a linear map to the embedding."""

from __future__ import annotations

import torch
from torch import nn


class MaxPoolHead(nn.Module):
    """Global max pooling then a linear map: ``(B, C, H, W)`` -> ``(B, dim)``.

    Built by cvbench as ``MaxPoolHead(in_channels, feature_hw, dim, **options)``.
    """

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, dim)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.linear(feature_map.amax(dim=(2, 3)))
