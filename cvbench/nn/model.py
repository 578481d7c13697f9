"""The two-branch retrieval network of thesis section 3.2.1.

Ground and aerial images go through separate (unshared) backbones and heads;
the embeddings are compared by cosine similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Branch(nn.Module):
    """One view's encoder: backbone ``f`` then aggregation head ``g``: images -> embedding."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


class TwoBranchNet(nn.Module):
    """``ground`` and ``aerial`` branches; :meth:`embed` returns L2-normalised embeddings."""

    def __init__(self, ground: Branch, aerial: Branch) -> None:
        super().__init__()
        self.ground = ground
        self.aerial = aerial

    def branch(self, name: str) -> Branch:
        return self.ground if name == "ground" else self.aerial

    def embed(self, name: str, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.branch(name)(images).float(), dim=-1)
