"""Soft-margin triplet loss over all in-batch negatives, both ways (thesis eq 3.3, 3.4).

The cross-view matching loss of the thesis (section 3.2.2), the weighted
soft-margin triplet loss of CVM-Net [0] that eq 3.3 cites:

    L(a, p, n) = log(1 + exp(gamma * (d(a, p) - d(a, n))))

summed as in eq 3.4 over every pair ``i != j`` of the batch with ground
anchors against aerial negatives and aerial anchors against ground negatives:
``2 N (N - 1)`` terms.

Deviation from the thesis' typesetting: eq 3.3 writes ``log(1 + gamma *
exp(d_pos - d_neg))``. The cited loss [0] and the SAFA [1] and VIGOR training
code (``compute_loss`` with ``loss_weight = 10``) put ``gamma`` inside the
exponent, where it scales the gradient as section 3.2.2 describes; outside it
would only shift the argument by ``log(gamma)``, i.e. act as a margin. This
module follows the cited loss.

- [0] Hu, Feng, Nguyen, Wang, Lee. "CVM-Net: Cross-view matching network for
  image-based ground-to-aerial geo-localization", CVPR 2018.
- [1] Shi, Liu, Zhang, Li. "Spatial-aware feature aggregation for image based
  cross-view geo-localization", NeurIPS 2019.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from cvbench import Loss
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_choice, require_float

DISTANCES = ("euclidean", "sqeuclidean")
REDUCTIONS = ("mean", "sum")


def pairwise_squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` for all pairs, ``(N, D), (M, D) -> (N, M)``; ``2 - 2 cos`` on unit vectors."""
    squared = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1) - 2.0 * x @ y.T
    return squared.clamp_min(0.0)


class SoftMarginTripletLoss(Loss):
    """Soft-margin triplet loss of CVM-Net over all in-batch negatives in both directions.

    Shapes:
        input: ``z_ground (N, D)`` and ``z_aerial (N, D)``, L2-normalised; row
            ``i`` of both is a matching pair and every other row a negative.
        output: scalar.

    Examples:
        >>> loss_fn = SoftMarginTripletLoss()
        >>> z_ground = F.normalize(torch.randn(8, 128), dim=1)
        >>> z_aerial = F.normalize(torch.randn(8, 128), dim=1)
        >>> loss = loss_fn(z_ground, z_aerial)
    """

    def __init__(self, gamma: float = 10.0, distance: str = "euclidean", reduction: str = "mean") -> None:
        """Build the loss.

        Args:
            gamma: Scale inside the exponent; 10 in SAFA and VIGOR.
            distance: ``"euclidean"``: ``||a - b||_2``, the L2 norm of section
                3.2.2. ``"sqeuclidean"``: ``||a - b||^2``, i.e. ``2 - 2 cos`` on
                normalised embeddings, what the SAFA and VIGOR code use.
            reduction: ``"mean"`` over the ``2 N (N - 1)`` triplets (the SAFA
                code's normalisation, independent of batch size) or ``"sum"``,
                eq 3.4 literally.

        Raises:
            SpecError: A ``gamma`` that is not a positive finite number, or an
                unknown ``distance`` or ``reduction``.
        """
        super().__init__()
        gamma = require_float("soft_triplet", "gamma", gamma, low=0.0, low_open=True, high_open=True)
        require_choice("soft_triplet", "distance", distance, DISTANCES)
        require_choice("soft_triplet", "reduction", reduction, REDUCTIONS)
        self.gamma = float(gamma)
        self.distance = distance
        self.reduction = reduction

    def forward(self, z_ground: torch.Tensor, z_aerial: torch.Tensor) -> torch.Tensor:
        """Eq 3.4 (with the cited eq 3.3) on a batch of matching pairs.

        Args:
            z_ground: Ground embeddings ``(N, D)``.
            z_aerial: Aerial embeddings ``(N, D)``; row ``i`` matches ``z_ground[i]``.

        Returns:
            The mean (or sum) of the ``2 N (N - 1)`` triplet losses.

        Raises:
            ValueError: Inputs that are not 2-D, differ in shape, or hold fewer
                than 2 pairs (a single pair has no negative).
        """
        if z_ground.dim() != 2 or z_ground.shape != z_aerial.shape:
            raise ValueError(
                "soft_triplet expects z_ground and z_aerial of the same shape (N, D), "
                f"got {tuple(z_ground.shape)} and {tuple(z_aerial.shape)}"
            )
        n = z_ground.shape[0]
        if n < 2:
            raise ValueError(f"soft_triplet needs a batch of at least 2 pairs to have negatives, got {n}")
        # At least float32 even under autocast: in bfloat16, 2 - 2 cos of a close
        # pair is off by ~1e-2 and its square root by ~0.1.
        dtype = torch.promote_types(z_ground.dtype, torch.float32)
        with torch.autocast(z_ground.device.type, enabled=False):
            dist = pairwise_squared_distances(z_ground.to(dtype), z_aerial.to(dtype))
            if self.distance == "euclidean":
                # The floor keeps the gradient of sqrt finite for coinciding points.
                dist = dist.clamp_min(1e-12).sqrt()
            # dist[i, j] = d(ground_i, aerial_j): the positive distances lie on the diagonal.
            positive = dist.diagonal()
            # a multiplicative mask, not boolean indexing: indexing waits for the GPU to count the rows
            off_diagonal = 1.0 - torch.eye(n, dtype=dist.dtype, device=dist.device)
            ground_anchor = F.softplus(self.gamma * (positive.unsqueeze(1) - dist)) * off_diagonal
            aerial_anchor = F.softplus(self.gamma * (positive.unsqueeze(0) - dist)) * off_diagonal
            total = ground_anchor.sum() + aerial_anchor.sum()
        if self.reduction == "sum":
            return total
        return total / (2 * n * (n - 1))


@hookimpl
def register_losses(register: Register) -> None:
    """Register ``soft_triplet``."""
    register(
        "soft_triplet",
        SoftMarginTripletLoss,
        summary="soft-margin triplet loss log(1 + exp(gamma (d_pos - d_neg))), all in-batch negatives, both ways (eq 3.3-3.4)",
    )
