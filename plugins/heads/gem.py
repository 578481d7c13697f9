"""GeM: generalised-mean pooling of a feature map, with a learnable exponent, then a projection to ``dim``.

Radenovic, Tolias, Chum [0]: each channel is pooled as

    f_c = ( mean_i x_ci^p )^(1/p),   x clamped at eps > 0

so p = 1 is average pooling and p -> infinity max pooling; p is learned
(initialised at 3, the paper's choice). It is computed as
max_i x_ci (mean_i (x_ci / max_i x_ci)^p)^(1/p), the same value without the
overflow or underflow of x^p for a large p or in half precision. A fixed
p = 1 (``p=1 learn_p=false``) is the plain mean of the raw features, without
the clamp: average pooling, which keeps the sign of features that have one
(ConvNeXt stages, ViT tokens), as Sample4Geo pools. A linear map projects the C pooled
channels to the embedding. With ``project=false`` and ``learn_p=false`` the
head has no parameters at all: the zero-shot baseline of a frozen backbone
(``--dim`` must then equal the channel count, which ``--dim auto`` gives).

- [0] Radenovic, Tolias, Chum. "Fine-tuning CNN image retrieval with no human
  annotation", TPAMI 2019.
"""

from __future__ import annotations

import torch
from torch import nn

from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_bool, require_float, require_int
from cvbench.errors import SpecError


class GeMHead(nn.Module):
    """Generalised-mean pooling (learnable p) and a linear projection.

    Shapes:
        input: feature map ``(B, C, H, W)``; any ``H, W``.
        output: ``(B, dim)``, not normalised.
    """

    def __init__(self, in_channels: int, dim: int, p: float = 3.0, learn_p: bool = True, project: bool = True,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.in_channels = require_int("gem", "in_channels", in_channels, minimum=1)
        dim = require_int("gem", "dim", dim, minimum=1)
        project = require_bool("gem", "project", project)
        if not project and dim != self.in_channels:
            raise SpecError(f"gem: without a projection the embedding is the backbone's {self.in_channels} channels; "
                            f"set --dim {self.in_channels} (or --dim auto), or --head-option project=true")
        self.p = nn.Parameter(torch.tensor(require_float("gem", "p", p, low=1.0)),
                              requires_grad=require_bool("gem", "learn_p", learn_p))
        self.eps = require_float("gem", "eps", eps, low=0.0, low_open=True)
        self.proj = nn.Linear(self.in_channels, dim) if project else nn.Identity()

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C)``: the generalised mean over positions."""
        if feature_map.dim() != 4 or feature_map.shape[1] != self.in_channels:
            raise ValueError(f"gem expects a feature map (B, {self.in_channels}, H, W), got {tuple(feature_map.shape)}")
        if not self.p.requires_grad and float(self.p) == 1.0:
            return feature_map.mean(dim=(2, 3))
        p = self.p.clamp(min=1.0)
        x = feature_map.clamp(min=self.eps)
        peak = x.amax(dim=(2, 3), keepdim=True)  # x / peak <= 1: no overflow or underflow to 0 for a large p
        return peak.flatten(1) * (x / peak).pow(p).mean(dim=(2, 3)).pow(1.0 / p)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(feature_map))


def build_gem(in_channels: int, feature_hw: tuple[int, int], dim: int, p: float = 3.0, learn_p: bool = True,
              project: bool = True) -> GeMHead:
    """Head factory; ``feature_hw`` is unused (the mean pools any size)."""
    return GeMHead(in_channels, dim, p=p, learn_p=learn_p, project=project)


def gem_natural_dim(in_channels: int, feature_hw: tuple[int, int], **options: object) -> int:
    """``--dim auto``: the channel count (what the pooled features are before any projection)."""
    return in_channels


build_gem.natural_dim = gem_natural_dim


@hookimpl
def register_heads(register: Register) -> None:
    """Register ``gem``."""
    register("gem", build_gem, summary="GeM pooling (learnable p, init 3) + linear projection; parameter-free with "
                                      "project=false learn_p=false (zero-shot)")
