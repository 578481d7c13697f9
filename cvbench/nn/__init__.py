"""Building blocks for self-supervised methods, shared by every plugin, built-in or third-party.

Plugins import these from the harness, never from one another::

    from cvbench.nn import KeyQueue, concat_all_gather, ema_update, infonce, momentum_copy

- :class:`KeyQueue`: MoCo's first-in-first-out queue of negative keys.
- :func:`momentum_copy`, :func:`ema_update`, :func:`cosine_momentum`: a
  frozen momentum encoder, its update (thesis eq 3.2) and BYOL's schedule.
- :func:`infonce`: InfoNCE of queries against their keys and a queue of
  negatives (thesis eq 3.1).
- :func:`split_forward`, :func:`has_batchnorm`: split BatchNorm, one process
  emulating per-GPU BatchNorm.
- :func:`concat_all_gather`, :func:`batch_shuffle`, :func:`batch_unshuffle`:
  MoCo's collectives under ``torchrun`` (from :mod:`cvbench.nn.distributed`);
  the identity on one process. :func:`broadcast_module` gives every rank
  rank 0's weights (a head initialised from its first batch).
"""

from .distributed import batch_shuffle, batch_unshuffle, broadcast_module, concat_all_gather
from .infonce import infonce
from .momentum import cosine_momentum, ema_update, momentum_copy
from .queue import KeyQueue
from .split_batchnorm import has_batchnorm, split_forward

__all__ = [
    "KeyQueue",
    "batch_shuffle",
    "batch_unshuffle",
    "broadcast_module",
    "concat_all_gather",
    "cosine_momentum",
    "ema_update",
    "has_batchnorm",
    "infonce",
    "momentum_copy",
    "split_forward",
]
