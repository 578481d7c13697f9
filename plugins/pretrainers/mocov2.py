"""MoCov2: momentum contrast with an MLP head, the pre-training of thesis section 3.1.1.

Query encoder ``g_theta'(f_theta'(v))`` = the given backbone + :func:`mocov2_projector`;
key encoder ``g_xi'(f_xi'(v'))`` = a momentum copy of both (eq 3.2); loss =
InfoNCE of each query against its key and a queue of past keys (eq 3.1), as
in Algorithm 1 (He et al. 2020; Chen et al. 2020, "Improved baselines").
Defaults are the thesis' section 4.2 values; ``bn_splits`` (8) is the MoCo
authors' single-GPU emulation of shuffling BN (:mod:`cvbench.nn.split_batchnorm`).
The optimizer and learning-rate schedule belong to the engine (thesis: SGD
lr 0.015 for batch 128, momentum 0.9, weight decay 1e-4, 200 epochs, x0.1 at
epochs 120 and 160).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvbench import Pretrainer, distributed
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.data.augment import Transform, mocov2_augmentation
from cvbench.nn import (
    KeyQueue,
    batch_shuffle,
    batch_unshuffle,
    concat_all_gather,
    ema_update,
    has_batchnorm,
    infonce,
    momentum_copy,
    split_forward,
)

from .projection import mocov2_projector


class MoCoV2(Pretrainer):
    """MoCov2 around ``backbone`` (images (B, 3, H, W) -> feature maps (B, feature_dim, h, w)).

    ``forward(view1, view2)`` encodes ``view1`` as queries and ``view2`` as
    keys and returns the InfoNCE loss; ``after_step()`` then moves the key
    encoder (eq 3.2) and enqueues the keys of every ``forward`` since the last
    call, the order of Algorithm 1. Under DDP with several ranks the keys of
    all ranks are enqueued and the key encoder runs on a batch shuffled
    across ranks (shuffling BN); ``bn_splits`` is then ignored. On one
    process (a process group of one rank included), in
    training mode and with a BatchNorm backbone, ``bn_splits > 1`` emulates
    that many GPUs: the query encoder runs on ``bn_splits`` contiguous
    sub-batches of ``view1``, the key encoder on ``bn_splits`` sub-batches of
    a randomly shuffled ``view2`` (keys then put back in order), so no key
    shares its BatchNorm statistics with its query. The batch must then
    divide by ``bn_splits`` with at least 2 images per sub-batch (else a
    ``ValueError``); ``bn_splits=1`` turns this off.
    """

    shuffles_batchnorm = True  # the engine leaves BatchNorm per-process rather than SyncBN

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        queue_size: int = 16384,
        momentum: float = 0.999,
        temperature: float = 0.2,
        proj_hidden: int = 512,
        proj_dim: int = 128,
        bn_splits: int = 8,
    ) -> None:
        super().__init__()
        feature_dim = require_int("mocov2", "feature_dim", feature_dim, minimum=1)
        self.momentum = require_float("mocov2", "momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.temperature = require_float("mocov2", "temperature", temperature, low=0.0, low_open=True, high_open=True)
        queue_size = require_int("mocov2", "queue_size", queue_size, minimum=1)
        proj_hidden = require_int("mocov2", "proj_hidden", proj_hidden, minimum=1)
        proj_dim = require_int("mocov2", "proj_dim", proj_dim, minimum=1)
        self.bn_splits = require_int("mocov2", "bn_splits", bn_splits, minimum=1)

        self.backbone = backbone
        self._backbone_has_bn = has_batchnorm(backbone)
        self.projector = mocov2_projector(feature_dim, proj_hidden, proj_dim)
        self.key_backbone = momentum_copy(backbone)
        self.key_projector = momentum_copy(self.projector)
        self.queue = KeyQueue(queue_size, proj_dim)
        self._pending_keys: list[torch.Tensor] = []

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """InfoNCE loss of queries ``view1`` (B, 3, H, W) against keys ``view2`` and the queue (eq 3.1)."""
        if self._split_batchnorm():
            query = F.normalize(split_forward(self._query_encoder, view1, self.bn_splits), dim=1)
            with torch.no_grad():
                key = F.normalize(split_forward(self._key_encoder, view2, self.bn_splits, shuffle=True), dim=1)
        else:
            query = F.normalize(self._query_encoder(view1), dim=1)
            with torch.no_grad():
                shuffled, unshuffle = batch_shuffle(view2)
                key = batch_unshuffle(F.normalize(self._key_encoder(shuffled), dim=1), unshuffle)
        loss = infonce(query, key, self.queue.keys, self.temperature)
        if self.training:
            self._pending_keys.append(key)
        return loss

    def _query_encoder(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(images))

    def _key_encoder(self, images: torch.Tensor) -> torch.Tensor:
        return self.key_projector(self.key_backbone(images))

    def _split_batchnorm(self) -> bool:
        """Whether this forward emulates per-GPU BatchNorm: one process, training mode, a BatchNorm backbone."""
        return self.bn_splits > 1 and self.training and self._backbone_has_bn and not distributed.active()

    @torch.no_grad()
    def after_step(self) -> None:
        """Momentum update of the key encoder (eq 3.2), then enqueue the new keys from every process."""
        ema_update(self.key_backbone, self.backbone, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
        for key in self._pending_keys:
            self.queue.enqueue(concat_all_gather(key))
        self._pending_keys.clear()

    def augmentations(self, image_size: tuple[int, int]) -> tuple[Transform, Transform]:
        """Two independent draws of the MoCov2 recipe (thesis appendix 6.2)."""
        return mocov2_augmentation(image_size), mocov2_augmentation(image_size)


@hookimpl
def register_pretrainers(register: Register) -> None:
    register("mocov2", MoCoV2, summary="MoCov2: momentum key encoder, MLP head and a queue of negatives (thesis 3.1.1)")
