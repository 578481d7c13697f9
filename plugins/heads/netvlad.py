"""NetVLAD: soft assignment of local descriptors to K learned clusters, sums of residuals, then normalisation.

Arandjelovic et al. [0]: with descriptors x_i L2-normalised over channels,

    a_k(x_i) = softmax_k( w_k . x_i + b_k )             (a 1x1 convolution)
    V[k]     = sum_i a_k(x_i) (x_i - c_k)                (K x C)

each V[k] is L2-normalised (intra-normalisation), the K x C matrix is
flattened and L2-normalised, and a linear map projects it to ``dim``
(``project=false`` keeps the K x C descriptor; ``--dim auto`` gives K x C).
The clusters are initialised by k-means on the first training batch's
descriptors (``init=kmeans``, seeded by the run), setting w_k = 2 alpha c_k and
b_k = -alpha ||c_k||^2, so that the assignment starts as a sharpened nearest
centroid; ``init=random`` draws them instead.

- [0] Arandjelovic, Gronat, Torii, Pajdla, Sivic. "NetVLAD: CNN architecture for
  weakly supervised place recognition", CVPR 2016.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_bool, require_choice, require_float, require_int
from cvbench.errors import SpecError
from cvbench.nn import broadcast_module

INITS = ("kmeans", "random")
KMEANS_ITERATIONS = 20


class NetVLADHead(nn.Module):
    """NetVLAD aggregation of a ``(B, C, H, W)`` feature map into ``(B, dim)`` (not normalised)."""

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], dim: int, clusters: int = 16,
                 alpha: float = 100.0, init: str = "kmeans", project: bool = True) -> None:
        super().__init__()
        self.in_channels = require_int("netvlad", "in_channels", in_channels, minimum=1)
        self.clusters = require_int("netvlad", "clusters", clusters, minimum=1)
        positions = int(feature_hw[0]) * int(feature_hw[1])
        if self.clusters > positions:
            raise SpecError(f"netvlad: {self.clusters} clusters for a {feature_hw[0]}x{feature_hw[1]} feature map "
                            f"({positions} descriptors per image); use at most {positions} "
                            "(--head-option clusters=...) or a larger image or earlier --backbone-stage")
        self.alpha = require_float("netvlad", "alpha", alpha, low=0.0, low_open=True)
        self.init = require_choice("netvlad", "init", init, INITS)
        width = self.clusters * self.in_channels
        dim = require_int("netvlad", "dim", dim, minimum=1)
        if not require_bool("netvlad", "project", project) and dim != width:
            raise SpecError(f"netvlad: without a projection the descriptor has clusters x channels = {width} values; "
                            f"set --dim {width} (or --dim auto), or --head-option project=true")
        self.centroids = nn.Parameter(torch.rand(self.clusters, self.in_channels))
        self.assign = nn.Conv2d(self.in_channels, self.clusters, kernel_size=1)
        self.proj = nn.Linear(width, dim) if project else nn.Identity()
        self.register_buffer("initialised", torch.tensor(self.init == "random"))
        if self.init == "random":
            self._set_centroids(F.normalize(torch.randn(self.clusters, self.in_channels), dim=1))

    def _set_centroids(self, centroids: torch.Tensor) -> None:
        with torch.no_grad():
            self.centroids.copy_(centroids)
            self.assign.weight.copy_((2.0 * self.alpha * centroids)[:, :, None, None])
            self.assign.bias.copy_(-self.alpha * centroids.pow(2).sum(dim=1))

    def _kmeans(self, descriptors: torch.Tensor) -> None:
        """Lloyd's k-means on ``descriptors`` (n, C), started from K of them drawn by the torch generator."""
        start = torch.randperm(descriptors.shape[0])[: self.clusters]
        centroids = descriptors[start].clone()
        for _ in range(KMEANS_ITERATIONS):
            nearest = torch.cdist(descriptors, centroids).argmin(dim=1)
            for k in range(self.clusters):
                members = descriptors[nearest == k]
                if len(members):
                    centroids[k] = members.mean(dim=0)
        self._set_centroids(centroids)
        self.initialised.fill_(True)
        broadcast_module(self)  # under torchrun every rank saw its own first batch: rank 0's clusters for all

    def descriptor(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The normalised VLAD descriptor ``(B, K * C)`` before the projection."""
        if feature_map.dim() != 4 or feature_map.shape[1] != self.in_channels:
            raise ValueError(f"netvlad expects a feature map (B, {self.in_channels}, H, W), "
                             f"got {tuple(feature_map.shape)}")
        x = F.normalize(feature_map, dim=1)
        if not bool(self.initialised):
            if self.training:
                with torch.no_grad():
                    self._kmeans(x.detach().permute(0, 2, 3, 1).reshape(-1, self.in_channels).float())
        assignment = F.softmax(self.assign(x), dim=1).flatten(2)  # (B, K, N)
        local = x.flatten(2)  # (B, C, N)
        vlad = assignment @ local.transpose(1, 2) - assignment.sum(dim=2, keepdim=True) * self.centroids
        return F.normalize(F.normalize(vlad, dim=2).flatten(1), dim=1)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.proj(self.descriptor(feature_map))


def build_netvlad(in_channels: int, feature_hw: tuple[int, int], dim: int, clusters: int = 16, alpha: float = 100.0,
                  init: str = "kmeans", project: bool = True) -> NetVLADHead:
    """Head factory: the feature map's size bounds the number of clusters."""
    return NetVLADHead(in_channels, feature_hw, dim, clusters=clusters, alpha=alpha, init=init, project=project)


def netvlad_natural_dim(in_channels: int, feature_hw: tuple[int, int], clusters: int = 16, **options: object) -> int:
    """``--dim auto``: clusters x channels, the VLAD descriptor's size."""
    return int(clusters) * in_channels


build_netvlad.natural_dim = netvlad_natural_dim


@hookimpl
def register_heads(register: Register) -> None:
    """Register ``netvlad``."""
    register("netvlad", build_netvlad, summary="NetVLAD: soft-assigned residuals to K clusters (k-means init), "
                                              "intra-normalised, projected to dim")
