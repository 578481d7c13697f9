"""Siamese-VGG aggregation head: global average pooling and a two-layer MLP.

The baseline aggregation of the thesis (section 3.2.1), taken from
Siamese-VGG [0] and printed in the thesis' appendix 6.1::

    AdaptiveAvgPool2d(1) -> Linear(C, 512) -> ReLU -> Linear(512, dim)

The appendix prints ``dim = 128``; section 4.2 reports 4096-d
representations. The engine chooses ``dim`` and L2-normalises the output.

- [0] Zhu, Yang, Chen. "Revisiting street-to-aerial view image
  geo-localization and orientation estimation", WACV 2021.
"""

from __future__ import annotations

import torch
from torch import nn

from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_int


class SiameseVGGHead(nn.Module):
    """Average-pool a feature map and embed it with Linear-ReLU-Linear (appendix 6.1).

    Shapes:
        input: feature map ``(B, C, H, W)`` with ``C == in_channels``; any ``H, W``.
        output: embedding ``(B, dim)``, not normalised.

    Examples:
        >>> head = SiameseVGGHead(in_channels=512, dim=128)
        >>> head(torch.randn(2, 512, 7, 14)).shape
        torch.Size([2, 128])
    """

    def __init__(self, in_channels: int, dim: int, hidden_dim: int = 512) -> None:
        """Build the head.

        Args:
            in_channels: Channels ``C`` of the backbone's feature map (512 for VGG16).
            dim: Output embedding size.
            hidden_dim: Width of the hidden layer; 512 in appendix 6.1.

        Raises:
            SpecError: A size that is not a positive integer.
        """
        super().__init__()
        in_channels, dim, hidden_dim = (require_int("siamese_vgg", name, value, minimum=1) for name, value in
                                        (("in_channels", in_channels), ("dim", dim), ("hidden_dim", hidden_dim)))
        self.in_channels = in_channels
        self.dim = dim
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, dim),
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Embed a feature map.

        Args:
            feature_map: Backbone output ``(B, C, H, W)``.

        Returns:
            Embedding ``(B, dim)``.

        Raises:
            ValueError: The input is not 4-D or has the wrong number of channels.
        """
        if feature_map.dim() != 4 or feature_map.shape[1] != self.in_channels:
            raise ValueError(
                f"siamese_vgg expects a feature map (B, {self.in_channels}, H, W), "
                f"got {tuple(feature_map.shape)}"
            )
        return self.mlp(self.pool(feature_map).flatten(1))


def build_siamese_vgg(in_channels: int, feature_hw: tuple[int, int], dim: int, hidden_dim: int = 512) -> SiameseVGGHead:
    """Head factory of the plugin contract; ``feature_hw`` is unused (pooling accepts any size).

    Raises:
        SpecError: A size that is not a positive integer.
    """
    return SiameseVGGHead(in_channels, dim, hidden_dim=hidden_dim)


def siamese_vgg_natural_dim(in_channels: int, feature_hw: tuple[int, int], **options: object) -> int:
    """``--dim auto``: 8 x the channels, SAFA's size, so the two heads of Table 4.4 compare at one size (VGG16:
    the thesis' 4096)."""
    return 8 * in_channels


build_siamese_vgg.natural_dim = siamese_vgg_natural_dim


@hookimpl
def register_heads(register: Register) -> None:
    """Register ``siamese_vgg``."""
    register(
        "siamese_vgg",
        build_siamese_vgg,
        summary="Siamese-VGG: global average pool + Linear(C, 512)-ReLU-Linear(512, dim) (appendix 6.1)",
    )
