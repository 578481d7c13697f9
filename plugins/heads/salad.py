"""SALAD: local features assigned to clusters by optimal transport, with a dustbin, plus a global token.

Izquierdo and Civera [0]. From the feature map's n = H*W local features, two
small MLPs (1x1 convolutions) give each feature a reduced descriptor f_i
(``cluster_dim`` values) and scores S_ki for ``clusters`` clusters. A dustbin
row of learned constant score z joins S, and a few Sinkhorn iterations in log
space (SuperGlue's [1]) turn exp(S) into a transport plan P whose rows sum to
1/(m+n) for each cluster and (n-m)/(m+n) for the dustbin, and whose columns
sum to 1/(m+n); scaled by m+n, so a cluster's row holds the mass each
feature sends it. The dustbin's row is dropped (features that fit no cluster),
and

    V[k] = sum_i P_ki f_i                     (m x l, each V[k] L2-normalised)

is concatenated with a global token g (an MLP of the average-pooled map,
``token_dim`` values, L2-normalised; SALAD uses DINOv2's class token, which a
CNN map does not have). ``dim = token_dim + clusters * cluster_dim``;
``cluster_dim`` is derived from ``dim`` when not given.

- [0] Izquierdo, Civera. "Optimal transport aggregation for visual place
  recognition", CVPR 2024.
- [1] Sarlin et al. "SuperGlue: Learning feature matching with graph neural
  networks", CVPR 2020.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.errors import SpecError

HIDDEN = 512


def log_optimal_transport(scores: torch.Tensor, dustbin: torch.Tensor, iterations: int) -> torch.Tensor:
    """log of the transport plan (B, m + 1, n) for scores (B, m, n) and a dustbin score, times (m + n).

    Row marginals 1/(m+n) per cluster and (n-m)/(m+n) for the dustbin, column
    marginals 1/(m+n), reached by ``iterations`` alternating log-domain
    Sinkhorn normalisations.
    """
    batch, m, n = scores.shape
    couplings = torch.cat([scores, dustbin.reshape(1, 1, 1).expand(batch, 1, n)], dim=1)
    norm = -torch.log(scores.new_tensor(m + n))
    dustbin_mass = (torch.log(scores.new_tensor(n - m)) + norm).reshape(1)
    log_mu = torch.cat([norm.expand(m), dustbin_mass])[None].expand(batch, -1)
    log_nu = norm.expand(n)[None].expand(batch, -1)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)
    for _ in range(iterations):
        u = log_mu - torch.logsumexp(couplings + v[:, None, :], dim=2)
        v = log_nu - torch.logsumexp(couplings + u[:, :, None], dim=1)
    return couplings + u[:, :, None] + v[:, None, :] - norm


class SALADHead(nn.Module):
    """SALAD aggregation: ``(B, C, H, W)`` -> ``(B, token_dim + clusters * cluster_dim)``, normalised per part."""

    def __init__(self, in_channels: int, feature_hw: tuple[int, int], dim: int, clusters: int = 16,
                 cluster_dim: int | None = None, token_dim: int = 64, iterations: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.in_channels = require_int("salad", "in_channels", in_channels, minimum=1)
        self.clusters = require_int("salad", "clusters", clusters, minimum=1)
        positions = int(feature_hw[0]) * int(feature_hw[1])
        if self.clusters >= positions:
            raise SpecError(f"salad: {self.clusters} clusters need more than {self.clusters} local features, and a "
                            f"{feature_hw[0]}x{feature_hw[1]} map has {positions}; lower --head-option clusters=... "
                            "or use a larger image or earlier --backbone-stage")
        token_dim = require_int("salad", "token_dim", token_dim, minimum=1)
        dim = require_int("salad", "dim", dim, minimum=1)
        if cluster_dim is None:
            if (dim - token_dim) % self.clusters or dim <= token_dim:
                raise SpecError(f"salad: dim = token_dim + clusters x cluster_dim, and {dim} - {token_dim} is not a "
                                f"positive multiple of {self.clusters} clusters; set --dim "
                                f"{token_dim + self.clusters * max(1, (dim - token_dim) // self.clusters)} or "
                                "--head-option cluster_dim=...")
            cluster_dim = (dim - token_dim) // self.clusters
        self.cluster_dim = require_int("salad", "cluster_dim", cluster_dim, minimum=1)
        if token_dim + self.clusters * self.cluster_dim != dim:
            raise SpecError(f"salad: token_dim + clusters x cluster_dim = "
                            f"{token_dim + self.clusters * self.cluster_dim}, not --dim {dim}; use --dim auto")
        self.iterations = require_int("salad", "iterations", iterations, minimum=1)
        drop = require_float("salad", "dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.token = nn.Sequential(nn.Linear(self.in_channels, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, token_dim))
        self.features = nn.Sequential(nn.Conv2d(self.in_channels, HIDDEN, 1), nn.Dropout(drop), nn.ReLU(),
                                      nn.Conv2d(HIDDEN, self.cluster_dim, 1))
        self.score = nn.Sequential(nn.Conv2d(self.in_channels, HIDDEN, 1), nn.Dropout(drop), nn.ReLU(),
                                   nn.Conv2d(HIDDEN, self.clusters, 1))
        self.dustbin = nn.Parameter(torch.tensor(1.0))

    def assignment(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The mass each local feature sends each cluster, ``(B, clusters, H*W)`` (the dustbin's row dropped)."""
        plan = log_optimal_transport(self.score(feature_map).flatten(2), self.dustbin, self.iterations)
        return plan.exp()[:, :-1, :]

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        if feature_map.dim() != 4 or feature_map.shape[1] != self.in_channels:
            raise ValueError(f"salad expects a feature map (B, {self.in_channels}, H, W), "
                             f"got {tuple(feature_map.shape)}")
        local = self.features(feature_map).flatten(2)                     # (B, l, n)
        clusters = self.assignment(feature_map) @ local.transpose(1, 2)   # (B, m, l)
        token = self.token(feature_map.mean(dim=(2, 3)))
        return torch.cat([F.normalize(token, dim=1), F.normalize(clusters, dim=2).flatten(1)], dim=1)


def build_salad(in_channels: int, feature_hw: tuple[int, int], dim: int, clusters: int = 16,
                cluster_dim: int | None = None, token_dim: int = 64, iterations: int = 3,
                dropout: float = 0.0) -> SALADHead:
    """Head factory: the map's size bounds the number of clusters."""
    return SALADHead(in_channels, feature_hw, dim, clusters=clusters, cluster_dim=cluster_dim, token_dim=token_dim,
                     iterations=iterations, dropout=dropout)


def salad_natural_dim(in_channels: int, feature_hw: tuple[int, int], clusters: int = 16, cluster_dim: int = 32,
                      token_dim: int = 64, **options: object) -> int:
    """``--dim auto``: the token and the clusters' descriptors (cluster_dim 32 unless given)."""
    return int(token_dim) + int(clusters) * int(cluster_dim)


build_salad.natural_dim = salad_natural_dim


@hookimpl
def register_heads(register: Register) -> None:
    """Register ``salad``."""
    register("salad", build_salad, summary="SALAD: Sinkhorn optimal-transport assignment to clusters with a dustbin, "
                                          "plus a global token")
