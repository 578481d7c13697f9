"""The loss kind: one term of the fine-tuning objective (eq 3.10 sums the weighted terms)."""

from __future__ import annotations

import abc

import torch
from torch import nn


class Loss(nn.Module, metaclass=abc.ABCMeta):
    """Base class of a cross-view fine-tuning loss (thesis sections 3.2.2 and 3.4.1).

    Built as ``factory(**options)``. ``forward(z_ground, z_aerial)`` gets the
    L2-normalised embeddings ``(B, D)`` of a batch of pairs (row i of both is
    a matching pair; under ``torchrun`` gathered from every rank) and returns
    a scalar.
    """

    needs_images: bool = False
    """True: ``forward`` also receives this rank's two image batches,
    ``forward(z_ground, z_aerial, ground, aerial)``, un-gathered (X-MoCo's
    momentum encoders embed them again)."""

    def attach(self, model: nn.Module) -> None:
        """Called once with the two-branch network before the first batch. Default: nothing."""

    def after_step(self) -> None:
        """Called after every optimiser step (momentum updates, queues). Default: nothing."""

    @abc.abstractmethod
    def forward(self, z_ground: torch.Tensor, z_aerial: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        """The scalar loss of a batch of ground and aerial embeddings ``(N, D)``, L2-normalised."""
