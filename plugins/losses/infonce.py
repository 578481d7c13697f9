"""Symmetric in-batch InfoNCE with a learnable temperature, the loss of Sample4Geo.

Not a loss the thesis fine-tunes with: its eq 3.1 is InfoNCE for MoCo
pre-training, with a memory queue and a fixed temperature. Sample4Geo [0]
applies it to cross-view matching with the other pairs of the batch as
negatives, in both directions, like CLIP [1]:

    S_ij = s * <g_i, a_j>,   s = exp(log_scale) = 1 / temperature
    L    = ( CE(S, labels) + CE(S^T, labels) ) / 2,    labels_i = i

where CE is cross-entropy with label smoothing ``eps``: for row ``i``,
``(1 - eps) * (-log p_ii) + eps * mean_k(-log p_ik)`` with ``p = softmax(S_i)``.
The temperature is learned through ``log_scale`` (init ``log(1 / 0.07)``) and,
as in CLIP, the scale is held at or below 100: ``forward`` clamps it and
``after_step`` (called by the fine-tuning loop after each optimiser step)
projects the parameter back onto the bound.

- [0] Deuser, Habel, Oswald. "Sample4Geo: Hard negative sampling for
  cross-view geo-localisation", ICCV 2023.
- [1] Radford et al. "Learning transferable visual models from natural language
  supervision", ICML 2021.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from cvbench import Loss
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_bool, require_float
from cvbench.errors import SpecError


class InfoNCELoss(Loss):
    """Symmetric cross-entropy over the in-batch similarity matrix (Sample4Geo).

    Shapes:
        input: ``z_ground (N, D)`` and ``z_aerial (N, D)``, L2-normalised; row
            ``i`` of both is a matching pair.
        output: scalar.

    Examples:
        >>> loss_fn = InfoNCELoss()
        >>> z_ground = F.normalize(torch.randn(8, 128), dim=1)
        >>> z_aerial = F.normalize(torch.randn(8, 128), dim=1)
        >>> loss = loss_fn(z_ground, z_aerial)
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learnable_temperature: bool = True,
        max_scale: float = 100.0,
        label_smoothing: float = 0.1,
    ) -> None:
        """Build the loss.

        Args:
            temperature: Initial temperature ``1 / s``; 0.07 in CLIP and Sample4Geo.
            learnable_temperature: Learn ``log_scale`` as a parameter; if False it
                is a fixed buffer.
            max_scale: Upper bound of ``s`` (lower bound of the temperature is
                ``1 / max_scale``); 100 in CLIP.
            label_smoothing: Cross-entropy label smoothing in ``[0, 1)``; 0.1 in Sample4Geo.

        Raises:
            SpecError: A non-positive temperature or ``max_scale``, an initial
                scale above ``max_scale``, or a label smoothing outside ``[0, 1)``.
        """
        super().__init__()
        temperature = require_float("infonce", "temperature", temperature, low=0.0, low_open=True, high_open=True)
        require_bool("infonce", "learnable_temperature", learnable_temperature)
        max_scale = require_float("infonce", "max_scale", max_scale, low=0.0, low_open=True, high_open=True)
        if 1.0 / temperature > max_scale:
            raise SpecError(
                f"infonce: option temperature={temperature} is below 1/max_scale={1.0 / max_scale:g}; "
                "raise temperature or max_scale"
            )
        label_smoothing = require_float("infonce", "label_smoothing", label_smoothing, low=0.0, high=1.0,
                                        high_open=True)
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        self.max_log_scale = math.log(max_scale)
        self.label_smoothing = float(label_smoothing)

    def after_step(self) -> None:
        """Project ``log_scale`` back to ``log(max_scale)`` after an optimiser step, as CLIP does.

        ``forward`` clamps too, but a parameter left above the bound would get
        no gradient there and could not come back down.
        """
        with torch.no_grad():
            self.log_scale.clamp_(max=self.max_log_scale)

    @property
    def temperature(self) -> float:
        """The current temperature ``1 / s``."""
        return math.exp(-min(self.log_scale.item(), self.max_log_scale))

    def forward(self, z_ground: torch.Tensor, z_aerial: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE on a batch of matching pairs.

        Args:
            z_ground: Ground embeddings ``(N, D)``.
            z_aerial: Aerial embeddings ``(N, D)``; row ``i`` matches ``z_ground[i]``.

        Returns:
            Mean of the ground-to-aerial and aerial-to-ground cross-entropies.

        Raises:
            ValueError: Inputs that are not 2-D, differ in shape, or are empty.
        """
        if z_ground.dim() != 2 or z_ground.shape != z_aerial.shape or z_ground.shape[0] == 0:
            raise ValueError(
                "infonce expects non-empty z_ground and z_aerial of the same shape (N, D), "
                f"got {tuple(z_ground.shape)} and {tuple(z_aerial.shape)}"
            )
        # At least float32 even under autocast: a bfloat16 cosine is off by ~4e-3,
        # which a scale of 100 turns into logit errors of ~0.4.
        dtype = torch.promote_types(z_ground.dtype, torch.float32)
        with torch.autocast(z_ground.device.type, enabled=False):
            bound = self.log_scale.new_tensor(self.max_log_scale)
            # where, not clamp: at the bound itself clamp passes half the gradient or none.
            log_scale = torch.where(self.log_scale > bound, bound, self.log_scale)
            scale = log_scale.to(dtype).exp()
            logits = scale * z_ground.to(dtype) @ z_aerial.to(dtype).T
            labels = torch.arange(z_ground.shape[0], device=logits.device)
            ground_to_aerial = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
            aerial_to_ground = F.cross_entropy(logits.T, labels, label_smoothing=self.label_smoothing)
        return (ground_to_aerial + aerial_to_ground) / 2


@hookimpl
def register_losses(register: Register) -> None:
    """Register ``infonce``."""
    register(
        "infonce",
        InfoNCELoss,
        summary="symmetric in-batch InfoNCE, learnable temperature (init 0.07), label smoothing 0.1 (Sample4Geo)",
    )
