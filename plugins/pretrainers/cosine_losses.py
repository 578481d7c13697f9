"""The regression losses of the methods without negatives: BYOL and SimSiam.

Both compare a prediction ``p`` of one view with the projection ``z`` of the
other view and stop the gradient through ``z``; they differ only by an affine
map of the cosine similarity. Both compute in float32 whatever the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's loss, thesis eq 2.2: ``||p/|p| - z/|z| ||^2 = 2 - 2 cos(p, z)``, averaged over the batch.

    Args:
        prediction: (B, D) online predictions q_theta(z_theta), not normalised.
        target: (B, D) target projections z'_xi, not normalised; no gradient flows into them.

    Returns:
        Scalar float32 in [0, 4].
    """
    cosine = F.cosine_similarity(prediction.float(), target.detach().float(), dim=1)
    return (2.0 - 2.0 * cosine).mean()


def negative_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SimSiam's ``D(p, z) = -cos(p, stopgrad(z))`` (Chen & He 2021, eq 1), averaged over the batch.

    Args:
        prediction: (B, D) predictor outputs p, not normalised.
        target: (B, D) projector outputs z of the other view, not normalised; no gradient flows into them.

    Returns:
        Scalar float32 in [-1, 1].
    """
    return -F.cosine_similarity(prediction.float(), target.detach().float(), dim=1).mean()
