"""The two-branch retrieval network of thesis section 3.2.1.

Ground and aerial images go through separate (unshared) backbones and heads;
the embeddings are compared by cosine similarity. Every embedding a head
returns is checked here, where it is made, so a head plugin that returns the
wrong shape or NaN is named at once rather than failing later inside a loss
or a metric.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PluginError


class Branch(nn.Module):
    """One view's encoder: backbone ``f`` then aggregation head ``g``: images -> embedding."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


class TwoBranchNet(nn.Module):
    """``ground`` and ``aerial`` branches; :meth:`embed` returns L2-normalised embeddings.

    ``head`` is the head plugin's registered name and ``dim`` the embedding
    size the spec asks for (None: any), both for the checks of :meth:`embed`.
    """

    def __init__(self, ground: Branch, aerial: Branch, head: str = "head", dim: int | None = None) -> None:
        super().__init__()
        self.ground = ground
        self.aerial = aerial
        self.head_name = head
        self.dim = dim
        self._trained_finite: set[str] = set()  # branches whose first training output was checked finite

    def branch(self, name: str) -> Branch:
        return self.ground if name == "ground" else self.aerial

    def embed(self, name: str, images: torch.Tensor) -> torch.Tensor:
        """The ``name`` branch's embeddings of ``images``, L2-normalised, as float32 ``(batch, dim)``.

        The head's output shape is checked on every call (it costs nothing);
        its finiteness on every evaluation batch and on each branch's first
        training step (later a NaN shows as a NaN loss, which the training
        loop reports without waiting for the GPU here).
        """
        branch = self.branch(name)
        features = branch.backbone(images)
        output = branch.head(features)
        check_shape(output, images.shape[0], self.dim, self.head_name, name)
        if not self.training or name not in self._trained_finite:
            check_finite(output, features, self.head_name, name)
            if self.training:
                self._trained_finite.add(name)
        return F.normalize(output.float(), dim=-1)


def check_shape(output: object, batch: int, dim: int | None, head: str, branch: str) -> None:
    """Refuse a head output that is not a ``(batch, dim)`` tensor, naming the head plugin and both shapes."""
    expected = f"(batch, dim) = ({batch}, {dim if dim is not None else 'dim'})"
    if not isinstance(output, torch.Tensor):
        raise PluginError(f"head {head!r} returned {type(output).__name__} for the {branch} branch; expected a "
                          f"tensor of shape {expected}")
    shape = tuple(output.shape)
    if len(shape) != 2 or shape[0] != batch or (dim is not None and shape[1] != dim):
        raise PluginError(f"head {head!r} returned shape {shape} for a batch of {batch} {branch} images; expected "
                          f"{expected}" + (f" (--dim {dim})" if dim is not None else ""))


def check_finite(output: torch.Tensor, features: torch.Tensor, head: str, branch: str) -> None:
    """Refuse NaN or infinite embeddings, naming the head plugin and the branch, and whether its input was finite."""
    if bool(torch.isfinite(output).all()):
        return
    row = int((~torch.isfinite(output).all(dim=1)).nonzero()[0, 0])
    if bool(torch.isfinite(features).all()):
        cause = "its input feature map was finite, so the head made them"
    else:
        cause = "its input, the backbone's feature map, already had NaN/inf: check the weights and the images"
    raise PluginError(f"head {head!r} output had NaN/inf for the {branch} branch (row {row} of a batch of "
                      f"{output.shape[0]}); {cause}")
