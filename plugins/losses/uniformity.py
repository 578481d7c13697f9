"""Uniformity loss within each view: log of the Gaussian potential over pairs (thesis eq 3.9).

The auxiliary loss of the thesis' section 3.4.1, the uniformity metric of Wang
& Isola [0] (eq 3.5) applied separately to the ground and to the aerial
embeddings and summed:

    L = log mean_{i != j} exp(-t ||g_i - g_j||^2) + log mean_{i != j} exp(-t ||s_i - s_j||^2)

The thesis adds it to the triplet loss with a weight ``alpha`` (eq 3.10); the
engine applies that weight.

Eq 3.9 writes the log of the *sum* over the ``N (N - 1)`` pairs, while eq 3.5
and [0] use the log of the *mean*. The two differ by ``log(N (N - 1))`` per
view: a constant with no effect on the gradient that only makes the value
depend on the batch size. The default is the mean, so values compare across
batch sizes and with [0]; ``reduction="sum"`` gives eq 3.9 literally.

- [0] Wang, Isola. "Understanding contrastive representation learning through
  alignment and uniformity on the hypersphere", ICML 2020.
"""

from __future__ import annotations

import math

import torch

from cvbench import Loss
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_choice, require_float

REDUCTIONS = ("mean", "sum")


class UniformityLoss(Loss):
    """Sum of the ground and aerial uniformity of eq 3.9 (log-mean-exp by default).

    Shapes:
        input: ``z_ground (N, D)`` and ``z_aerial (N, D)``, L2-normalised, ``N >= 2``.
        output: scalar.

    Examples:
        >>> loss_fn = UniformityLoss(t=2.0)
        >>> z_ground = torch.nn.functional.normalize(torch.randn(8, 128), dim=1)
        >>> z_aerial = torch.nn.functional.normalize(torch.randn(8, 128), dim=1)
        >>> loss = loss_fn(z_ground, z_aerial)
    """

    def __init__(self, t: float = 2.0, reduction: str = "mean") -> None:
        """Build the loss.

        Args:
            t: Temperature of the Gaussian potential; 2 in [0].
            reduction: ``"mean"``: log of the mean over pairs ``i != j`` (eq 3.5,
                [0]). ``"sum"``: log of the sum, eq 3.9 literally.

        Raises:
            SpecError: A ``t`` that is not a positive finite number, or an unknown ``reduction``.
        """
        super().__init__()
        t = require_float("uniformity", "t", t, low=0.0, low_open=True, high_open=True)
        require_choice("uniformity", "reduction", reduction, REDUCTIONS)
        self.t = float(t)
        self.reduction = reduction

    def uniformity(self, z: torch.Tensor) -> torch.Tensor:
        """One view's term of eq 3.9: log of the mean (or sum) of ``exp(-t ||z_i - z_j||^2)`` over ``i != j``.

        Args:
            z: Embeddings ``(N, D)``, ``N >= 2``.

        Returns:
            Scalar.
        """
        n = z.shape[0]
        # At least float32 even under autocast: t scales the distances' rounding error.
        z = z.to(torch.promote_types(z.dtype, torch.float32))
        with torch.autocast(z.device.type, enabled=False):
            squared = (z.pow(2).sum(1, keepdim=True) + z.pow(2).sum(1) - 2.0 * z @ z.T).clamp_min(0.0)
            off_diagonal = ~torch.eye(n, dtype=torch.bool, device=z.device)
            value = torch.logsumexp(-self.t * squared[off_diagonal], dim=0)
        if self.reduction == "mean":
            value = value - math.log(n * (n - 1))
        return value

    def forward(self, z_ground: torch.Tensor, z_aerial: torch.Tensor) -> torch.Tensor:
        """Eq 3.9: ground uniformity plus aerial uniformity.

        Args:
            z_ground: Ground embeddings ``(N, D)``.
            z_aerial: Aerial embeddings ``(N, D)``.

        Returns:
            Scalar; lower is more uniform.

        Raises:
            ValueError: Inputs that are not 2-D, differ in shape, or hold fewer
                than 2 rows (no pair ``i != j``).
        """
        if z_ground.dim() != 2 or z_ground.shape != z_aerial.shape:
            raise ValueError(
                "uniformity expects z_ground and z_aerial of the same shape (N, D), "
                f"got {tuple(z_ground.shape)} and {tuple(z_aerial.shape)}"
            )
        if z_ground.shape[0] < 2:
            raise ValueError(f"uniformity needs at least 2 embeddings per view to form a pair, got {z_ground.shape[0]}")
        return self.uniformity(z_ground) + self.uniformity(z_aerial)


@hookimpl
def register_losses(register: Register) -> None:
    """Register ``uniformity``."""
    register(
        "uniformity",
        UniformityLoss,
        summary="uniformity within each view: log mean exp(-t ||z_i - z_j||^2) over pairs, ground + aerial (eq 3.9)",
    )
