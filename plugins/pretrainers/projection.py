"""Projection heads and predictors: the MLPs between a backbone and a self-supervised loss.

A projector maps the backbone's feature map (B, C, h, w) to a vector (B, D):
global average pooling, then an MLP. A predictor maps vectors to vectors.
Each follows its paper's layer list exactly; only the widths are options.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def _pooled(mlp: nn.Module) -> nn.Sequential:
    """Global average pooling (B, C, h, w) -> (B, C) in front of ``mlp``."""
    return nn.Sequential(
        OrderedDict(avgpool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(1), classifier=mlp)
    )


def mocov2_projector(in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> nn.Sequential:
    """MoCov2's head g, as printed in thesis section 3.1.1 (Chen et al. 2020, "MLP head").

    ``avgpool -> Linear(C, 512) -> ReLU -> Linear(512, 128)``; no BatchNorm.
    """
    return _pooled(nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)))


def byol_mlp(in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """BYOL's MLP (Grill et al. 2020, section 3.3): ``Linear -> BN -> ReLU -> Linear``.

    The paper uses it twice: as projector g (2048 -> 4096 -> 256 on ResNet-50)
    and as predictor q (256 -> 4096 -> 256).
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )


def byol_projector(in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """BYOL's projector g: average pooling, then :func:`byol_mlp`."""
    return _pooled(byol_mlp(in_dim, hidden_dim, out_dim))


def simsiam_projector(in_dim: int, hidden_dim: int = 2048, out_dim: int = 2048) -> nn.Sequential:
    """SimSiam's projection MLP (Chen & He 2021, section 4.1): three layers, BN after each.

    ``Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear -> BN``; the output
    BN has no affine part and the linear layers feeding a BN carry no bias
    (the authors' code disables it, BN would cancel it anyway).
    """
    return _pooled(
        nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=False),
            nn.BatchNorm1d(out_dim, affine=False),
        )
    )


def simsiam_predictor(dim: int = 2048, hidden_dim: int = 512) -> nn.Sequential:
    """SimSiam's prediction MLP h (Chen & He 2021, section 4.1): a bottleneck ``dim -> hidden -> dim``.

    ``Linear -> BN -> ReLU -> Linear``; the output layer has neither BN nor ReLU.
    """
    return nn.Sequential(
        nn.Linear(dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, dim),
    )
