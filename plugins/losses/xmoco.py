"""Cross-view MoCo: the unified MoCov2 / cross-view matching architecture of thesis appendix 6.5.

Two MoCo pairs across the views (figure 6.3 c). In the first, the ground
encoder q (``model.ground``) makes queries from panoramas G' and a momentum
encoder k makes positive keys from the satellite images S'; in the second,
the satellite encoder q' (``model.aerial``) makes queries from S' and a
momentum encoder k' makes keys from G'. Since it makes no sense to average a
satellite encoder into a ground one, each momentum encoder follows the query
encoder of *the other pair*, the one that sees its own view: k <- q', k' <- q
(eq 3.2). Each key encoder fills its own queue of negatives:

    L = InfoNCE(z_ground, k(S'), queue of k)  +  InfoNCE(z_aerial, k'(G'), queue of k')   (eq 3.1 twice)

The loss needs the model and the images, so it uses three optional loss
extensions of the engine: ``attach(model)`` once before training,
``needs_images = True`` (the engine passes the image batches to ``forward``),
and ``after_step()`` after every optimizer step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvbench import Loss
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.errors import CvbenchError
from cvbench.nn import KeyQueue, batch_shuffle, batch_unshuffle, concat_all_gather, ema_update, infonce, momentum_copy


@torch.no_grad()
def _encode_keys(encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """L2-normalised keys (B, D), with MoCo's batch shuffle across processes around the encoder."""
    shuffled, unshuffle = batch_shuffle(images)
    return batch_unshuffle(F.normalize(encoder(shuffled).float(), dim=1), unshuffle)


class CrossViewMoCo(Loss):
    """The appendix 6.5 loss: two cross-view MoCo pairs with momentum key encoders and two queues.

    After ``attach(model)`` the loss owns ``ground_key_encoder`` (k', a frozen
    copy of ``model.ground``) and ``aerial_key_encoder`` (k, a frozen copy of
    ``model.aerial``) and the queues of their keys; all are in ``state_dict``,
    none has a parameter that requires grad. Keys computed in a training-mode
    ``forward`` are enqueued by the next ``after_step``, after the momentum
    update, as in Algorithm 1. The queue width is taken from the first batch
    (or from a loaded ``state_dict``), so the loss needs no embedding size.
    """

    needs_images = True

    def __init__(self, *, temperature: float = 0.07, queue_size: int = 4096, momentum: float = 0.999) -> None:
        super().__init__()
        self.temperature = require_float("xmoco", "temperature", temperature, low=0.0, low_open=True, high_open=True)
        self.momentum = require_float("xmoco", "momentum", momentum, low=0.0, high=1.0, high_open=True)
        queue_size = require_int("xmoco", "queue_size", queue_size, minimum=1)
        self.ground_queue = KeyQueue(queue_size)
        self.aerial_queue = KeyQueue(queue_size)
        self.ground_key_encoder: nn.Module | None = None
        self.aerial_key_encoder: nn.Module | None = None
        # The query encoders are the model's; a tuple keeps them out of this module's parameters and state_dict.
        self._query_encoders: tuple[nn.Module, nn.Module] | None = None
        self._pending_keys: list[tuple[torch.Tensor, torch.Tensor]] = []

    def attach(self, model: nn.Module) -> None:
        """Copy ``model.ground`` and ``model.aerial`` into momentum key encoders; call once, before training."""
        for branch in ("ground", "aerial"):
            if not isinstance(getattr(model, branch, None), nn.Module):
                raise CvbenchError(f"xmoco needs a two-branch model with a module attribute {branch!r}")
        self._query_encoders = (model.ground, model.aerial)
        self.ground_key_encoder = momentum_copy(model.ground)
        self.aerial_key_encoder = momentum_copy(model.aerial)

    def forward(
        self,
        z_ground: torch.Tensor,
        z_aerial: torch.Tensor,
        ground_images: torch.Tensor,
        aerial_images: torch.Tensor,
    ) -> torch.Tensor:
        """Sum of the two InfoNCE terms (eq 3.1) for a batch of matching pairs.

        Args:
            z_ground: (B, D) L2-normalised ground queries from ``model.ground``.
            z_aerial: (B, D) L2-normalised aerial queries from ``model.aerial``.
            ground_images: (B, 3, Hg, Wg) the normalised panoramas behind ``z_ground``.
            aerial_images: (B, 3, Ha, Wa) the normalised satellite tiles behind ``z_aerial``.
        """
        if self.ground_key_encoder is None or self.aerial_key_encoder is None:
            raise CvbenchError("xmoco: the engine must call loss.attach(model) before the first batch")
        aerial_keys = _encode_keys(self.aerial_key_encoder, aerial_images)  # k(S'): positives for ground queries
        ground_keys = _encode_keys(self.ground_key_encoder, ground_images)  # k'(G'): positives for aerial queries
        self.aerial_queue.materialise(aerial_keys.shape[1])
        self.ground_queue.materialise(ground_keys.shape[1])
        loss = infonce(F.normalize(z_ground, dim=1), aerial_keys, self.aerial_queue.keys, self.temperature)
        loss = loss + infonce(F.normalize(z_aerial, dim=1), ground_keys, self.ground_queue.keys, self.temperature)
        if self.training:
            self._pending_keys.append((ground_keys, aerial_keys))
        return loss

    @torch.no_grad()
    def after_step(self) -> None:
        """Momentum update k' <- q (ground) and k <- q' (aerial) by eq 3.2, then enqueue the batch's keys."""
        if self._query_encoders is None or self.ground_key_encoder is None or self.aerial_key_encoder is None:
            raise CvbenchError("xmoco: the engine must call loss.attach(model) before after_step()")
        ground, aerial = self._query_encoders
        ema_update(self.ground_key_encoder, ground, self.momentum)
        ema_update(self.aerial_key_encoder, aerial, self.momentum)
        for ground_keys, aerial_keys in self._pending_keys:
            self.ground_queue.enqueue(concat_all_gather(ground_keys))
            self.aerial_queue.enqueue(concat_all_gather(aerial_keys))
        self._pending_keys.clear()


@hookimpl
def register_losses(register: Register) -> None:
    register(
        "xmoco",
        CrossViewMoCo,
        summary="Cross-view MoCo (appendix 6.5): momentum key encoders across views, two queues of negatives",
    )
