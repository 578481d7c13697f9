"""MixVPR: feature-mixer MLPs over the flattened feature map, then channel and row projections.

Ali-bey, Chaib-draa, Giguere [0]. The map ``(C, H, W)`` is flattened to C rows
of H*W values; ``depth`` feature-mixer blocks each add to it an MLP of its
layer-normalised rows,

    X <- X + W2 relu(W1 LayerNorm(X) + b1) + b2       (over the H*W positions)

then a linear map projects the C channels to ``out_channels`` and another
the H*W positions to ``rows`` (no bias), and the ``out_channels x rows``
result is flattened: ``dim = out_channels * rows`` (``rows`` 4, as the
paper, so ``dim`` must be a multiple of 4; ``--dim auto`` gives 4 C).

- [0] Ali-bey, Chaib-draa, Giguere. "MixVPR: Feature mixing for visual place
  recognition", WACV 2023.
"""

from __future__ import annotations

import torch
from torch import nn

from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.errors import SpecError


class FeatureMixer(nn.Module):
    """One block: ``x + MLP(LayerNorm(x))`` over the last dimension (the H*W positions)."""

    def __init__(self, width: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = max(1, int(width * mlp_ratio))
        self.mix = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(x)


class MixVPRHead(nn.Module):
    """MixVPR aggregation: ``(B, C, H, W)`` -> ``(B, out_channels * rows)``, not normalised."""

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], dim: int, depth: int = 4,
                 mlp_ratio: float = 1.0, rows: int = 4) -> None:
        super().__init__()
        self.in_channels = require_int("mixvpr", "in_channels", in_channels, minimum=1)
        self.feature_hw = (int(feature_hw[0]), int(feature_hw[1]))
        rows = require_int("mixvpr", "rows", rows, minimum=1)
        dim = require_int("mixvpr", "dim", dim, minimum=1)
        if dim % rows:
            raise SpecError(f"mixvpr: dim {dim} is out_channels x rows, so a multiple of rows = {rows}; "
                            f"try --dim {dim - dim % rows or rows} or --head-option rows=...")
        positions = self.feature_hw[0] * self.feature_hw[1]
        depth = require_int("mixvpr", "depth", depth, minimum=0)
        ratio = require_float("mixvpr", "mlp_ratio", mlp_ratio, low=0.0, low_open=True)
        self.mix = nn.Sequential(*[FeatureMixer(positions, ratio) for _ in range(depth)])
        self.channel_proj = nn.Linear(self.in_channels, dim // rows)
        self.row_proj = nn.Linear(positions, rows, bias=False)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        if feature_map.dim() != 4 or feature_map.shape[1] != self.in_channels or \
                tuple(feature_map.shape[2:]) != self.feature_hw:
            raise ValueError(f"mixvpr was built for feature maps (B, {self.in_channels}, {self.feature_hw[0]}, "
                             f"{self.feature_hw[1]}), got {tuple(feature_map.shape)}")
        x = self.mix(feature_map.flatten(2))               # (B, C, HW)
        x = self.channel_proj(x.transpose(1, 2))           # (B, HW, out_channels)
        x = self.row_proj(x.transpose(1, 2))               # (B, out_channels, rows)
        return x.flatten(1)


def build_mixvpr(in_channels: int, feature_hw: tuple[int, int], dim: int, depth: int = 4, mlp_ratio: float = 1.0,
                 rows: int = 4) -> MixVPRHead:
    """Head factory: the mixers work on the feature map's H*W positions, so its size is fixed here."""
    return MixVPRHead(in_channels, feature_hw, dim, depth=depth, mlp_ratio=mlp_ratio, rows=rows)


def mixvpr_natural_dim(in_channels: int, feature_hw: tuple[int, int], rows: int = 4, **options: object) -> int:
    """``--dim auto``: the channels kept, times the rows."""
    return in_channels * int(rows)


build_mixvpr.natural_dim = mixvpr_natural_dim


@hookimpl
def register_heads(register: Register) -> None:
    """Register ``mixvpr``."""
    register("mixvpr", build_mixvpr, summary="MixVPR: feature-mixer MLPs over the map, channel and row projections")
