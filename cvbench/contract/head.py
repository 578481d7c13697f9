"""The head kind: aggregation of a backbone's feature map into an embedding (appendix 6.1)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Head(Protocol):
    """What a head factory builds: a plain ``nn.Module`` with this ``forward``.

    Built as ``factory(in_channels, feature_hw, dim, **options)``: the
    backbone's channel count, the ``(H, W)`` of its feature map at the
    branch's image size, and the embedding dimension. Heads need no base
    class; this Protocol documents the shape contract.
    """

    def __call__(self, feature_map: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` -> ``(B, dim)`` (the engine L2-normalises it)."""
        ...
