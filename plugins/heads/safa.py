"""SAFA's spatial-aware embedding (SPE): D learned spatial weightings of a feature map.

Spatial-aware feature aggregation [0], re-implemented in the thesis' appendix
6.1 (``class SPE``) for a single embedding, generalised here to ``D``
embeddings as in the SAFA TensorFlow code (``spatial_aware(input_feature,
dimension)``). For a feature map ``F`` of shape ``(C, H*W)``:

    p_i      = max_c F[c, i]                                  (channel max-pool)
    A[d]     = W2[d] (W1[d] p + b1[d]) + b2[d]                (H*W -> H*W/2 -> H*W,
                                                              no activation between)
    z[d, c]  = sum_i F[c, i] A[d, i]

and the embedding is ``z`` flattened d-major to ``D * C`` values, the order of
both the appendix (``einsum('bci,bdi->bdc')``) and the SAFA code. SAFA uses
``D = 8``: VGG16's 512 channels give the 4096-d representation of the thesis'
section 4.2. The head derives ``D = dim / C`` from the requested ``dim``.

Parameters use the SAFA code's layout, so its checkpoints port by copying:
``weight1 (H*W, H*W//2, D)``, ``bias1 (H*W//2, D)``, ``weight2 (H*W//2, H*W, D)``,
``bias2 (H*W, D)``.

- [0] Shi, Liu, Zhang, Li. "Spatial-aware feature aggregation for image based
  cross-view geo-localization", NeurIPS 2019.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_choice, require_int
from cvbench.errors import SpecError

INITS = ("safa", "pytorch")


class SAFAHead(nn.Module):
    """SAFA's spatial-aware embedding with ``num_embeddings`` (``D``) spatial weightings.

    Shapes:
        input: feature map ``(B, C, H, W)`` with ``C == in_channels`` and
            ``(H, W) == feature_hw`` (the weights are per position).
        output: embedding ``(B, D * C)``, not normalised.

    Examples:
        >>> head = SAFAHead(in_channels=512, feature_hw=(7, 14), num_embeddings=8)
        >>> head(torch.randn(2, 512, 7, 14)).shape
        torch.Size([2, 4096])
    """

    def __init__(
        self,
        in_channels: int,
        feature_hw: tuple[int, int],
        num_embeddings: int = 8,
        init: str = "safa",
    ) -> None:
        """Build the head.

        Args:
            in_channels: Channels ``C`` of the backbone's feature map.
            feature_hw: ``(H, W)`` of the feature map; ``H * W`` must be at least 2.
            num_embeddings: ``D``, the number of spatial weightings; 8 in SAFA.
            init: ``"safa"``: the SAFA code's truncated normal (std 0.005, cut at
                2 std like TensorFlow's) for weights and 0.1 for biases.
                ``"pytorch"``: ``nn.Linear``'s default, what the thesis'
                appendix module got.

        Raises:
            SpecError: A size that is not a positive integer, ``H * W < 2``, or an
                unknown ``init``.
        """
        super().__init__()
        in_channels = require_int("safa", "in_channels", in_channels, minimum=1)
        num_embeddings = require_int("safa", "num_embeddings", num_embeddings, minimum=1)
        if (
            not isinstance(feature_hw, (tuple, list))
            or len(feature_hw) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in feature_hw)
        ):
            raise SpecError(f"safa: feature_hw must be two positive integers (H, W), got {feature_hw!r}")
        positions = feature_hw[0] * feature_hw[1]
        if positions < 2:
            raise SpecError(
                f"safa: the feature map is {feature_hw[0]}x{feature_hw[1]}, but SAFA's importance generator "
                "maps H*W -> H*W/2 -> H*W and needs H*W >= 2 positions; use larger images or a backbone "
                "that down-samples less"
            )
        require_choice("safa", "init", init, INITS)
        self.in_channels = in_channels
        self.feature_hw = (int(feature_hw[0]), int(feature_hw[1]))
        self.num_embeddings = num_embeddings
        hidden = positions // 2
        self.weight1 = nn.Parameter(torch.empty(positions, hidden, num_embeddings))
        self.bias1 = nn.Parameter(torch.empty(hidden, num_embeddings))
        self.weight2 = nn.Parameter(torch.empty(hidden, positions, num_embeddings))
        self.bias2 = nn.Parameter(torch.empty(positions, num_embeddings))
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "safa") -> None:
        """(Re-)initialise the importance generator; see ``__init__`` for ``init``."""
        if init == "safa":
            std = 0.005
            for weight in (self.weight1, self.weight2):
                nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
            for bias in (self.bias1, self.bias2):
                nn.init.constant_(bias, 0.1)
        elif init == "pytorch":
            # nn.Linear's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
            for weight, bias in ((self.weight1, self.bias1), (self.weight2, self.bias2)):
                bound = 1.0 / math.sqrt(weight.shape[0])
                nn.init.uniform_(weight, -bound, bound)
                nn.init.uniform_(bias, -bound, bound)
        else:
            raise SpecError(f"safa: option init must be one of {', '.join(INITS)}, got {init!r}")

    def spatial_weights(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The ``D`` spatial weightings ``A`` of a feature map.

        Args:
            feature_map: ``(B, C, H, W)``.

        Returns:
            ``(B, H*W, D)``.
        """
        pooled = feature_map.flatten(2).amax(dim=1)
        hidden = torch.einsum("bi,ijd->bjd", pooled, self.weight1) + self.bias1
        return torch.einsum("bjd,jid->bid", hidden, self.weight2) + self.bias2

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Embed a feature map.

        Args:
            feature_map: Backbone output ``(B, C, H, W)``.

        Returns:
            Embedding ``(B, D * C)``, d-major: entry ``d * C + c`` is ``z[d, c]``.

        Raises:
            ValueError: The input's channels or spatial size differ from the head's.
        """
        expected = (self.in_channels, *self.feature_hw)
        if feature_map.dim() != 4 or tuple(feature_map.shape[1:]) != expected:
            raise ValueError(
                f"safa expects a feature map (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(feature_map.shape)}"
            )
        weights = self.spatial_weights(feature_map)
        return torch.einsum("bci,bid->bdc", feature_map.flatten(2), weights).flatten(1)


def build_safa(in_channels: int, feature_hw: tuple[int, int], dim: int, init: str = "safa") -> SAFAHead:
    """Head factory of the plugin contract: ``D = dim / in_channels`` spatial embeddings.

    Raises:
        SpecError: A ``dim`` that is not a positive multiple of ``in_channels``,
            a feature map with fewer than 2 positions, or an unknown ``init``.
    """
    in_channels = require_int("safa", "in_channels", in_channels, minimum=1)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < in_channels or dim % in_channels:
        choices = ", ".join(f"{d * in_channels} (D={d})" for d in (1, 2, 4, 8))
        raise SpecError(
            f"safa: dim={dim!r} does not fit C={in_channels} backbone channels; SAFA outputs C x D values "
            f"for D spatial embeddings, so dim must be a positive multiple of {in_channels}, "
            f"e.g. {choices}; SAFA uses D=8"
        )
    return SAFAHead(in_channels, feature_hw, num_embeddings=dim // in_channels, init=init)


def safa_natural_dim(in_channels: int, feature_hw: tuple[int, int], **options: object) -> int:
    """``--dim auto``: D = 8 spatial weightings of the C channels, SAFA's (VGG16: the thesis' 4096)."""
    return 8 * in_channels


build_safa.natural_dim = safa_natural_dim


@hookimpl
def register_heads(register: Register) -> None:
    """Register ``safa``."""
    register(
        "safa",
        build_safa,
        summary="SAFA spatial-aware embedding: D = dim/C learned spatial weightings of the feature map (appendix 6.1)",
    )
