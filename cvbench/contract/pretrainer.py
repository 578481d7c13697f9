"""The pretrainer kind: a self-supervised (or supervised) method that trains one branch's backbone."""

from __future__ import annotations

import abc

from typing import Callable, ClassVar

import torch
from torch import nn

ViewTransform = Callable[[torch.Tensor], torch.Tensor]


class Pretrainer(nn.Module, metaclass=abc.ABCMeta):
    """Base class of a pre-training method (thesis section 3.1).

    Built as ``factory(backbone, feature_dim, **options)``; the method wraps
    ``backbone`` (keeping it as ``.backbone``, the encoder that is saved and
    transferred) and trains it in place.

    Two factory-level declarations are read before the method is built:

    - a ``label_column`` class attribute (default None) names a metadata
      column whose classes the method learns; the engine then passes
      ``classes`` (the sorted names) to the factory and each image's class
      index to ``forward`` (supervised pre-training);
    - a ``total_steps`` parameter of the factory receives the stage's number
      of optimiser steps, for schedules over the whole stage (BYOL's momentum).
    """

    shuffles_batchnorm: bool = False
    """True when the method shuffles BatchNorm statistics across GPUs itself
    (MoCo's shuffling BN); otherwise the engine converts BN to SyncBatchNorm
    under ``torchrun``."""

    label_column: ClassVar[str | None] = None

    backbone: nn.Module
    """The encoder the factory was given, trained in place (set it in ``__init__``)."""

    @abc.abstractmethod
    def forward(self, view1: torch.Tensor, view2: torch.Tensor, *labels: torch.Tensor) -> torch.Tensor:
        """The scalar loss of a batch of two augmented views ``(B, 3, H, W)`` (normalised)."""

    def after_step(self) -> None:
        """Called after every optimiser step: momentum-encoder and queue updates. Default: nothing."""

    @abc.abstractmethod
    def augmentations(self, image_size: tuple[int, int]) -> tuple[ViewTransform, ViewTransform]:
        """The two transforms (uint8 ``(3, H, W)`` -> float [0, 1]) that make view 1 and view 2."""
