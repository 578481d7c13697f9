"""MoCo's dictionary of negative keys: a fixed-size first-in-first-out queue.

He et al. 2020, section 3.2, and thesis section 3.1.1: the keys of each new
mini-batch replace the oldest ones, and every stored key is a negative in the
InfoNCE loss (thesis eq 3.1). The keys and the write position are registered
buffers, so they follow ``.to(device)`` and are saved in ``state_dict``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class KeyQueue(nn.Module):
    """``size`` L2-normalised keys of width ``dim``, oldest overwritten first.

    As in MoCo the queue starts full of random unit vectors, so it offers
    ``size`` negatives from the first step. ``enqueue`` wraps around the end,
    so ``size`` need not be a multiple of the batch size (the reference code
    asserts that it is).

    ``dim=None`` defers the width until the first ``enqueue``/``materialise``
    or until a ``state_dict`` holding keys is loaded: a loss that only sees
    its embeddings at the first forward can still resume from a checkpoint.
    """

    keys: torch.Tensor
    ptr: torch.Tensor

    def __init__(self, size: int, dim: int | None = None) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size = size
        self.register_buffer("keys", torch.empty(size, 0))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        if dim is not None:
            self.materialise(dim)

    @property
    def dim(self) -> int | None:
        """The key width, or ``None`` while it is still deferred."""
        return self.keys.shape[1] or None

    def materialise(self, dim: int) -> None:
        """Fill the queue with ``size`` random unit vectors of width ``dim``; nothing to do if already that width."""
        if self.dim == dim:
            return
        if self.dim is not None:
            raise ValueError(f"queue already holds keys of width {self.dim}, cannot switch to {dim}")
        self.keys = F.normalize(torch.randn(self.size, dim, device=self.keys.device), dim=1)

    @torch.no_grad()
    def enqueue(self, batch: torch.Tensor) -> None:
        """Write ``batch`` (N, dim) over the N oldest keys, wrapping around the end.

        With ``N > size`` only the newest ``size`` keys survive, as if the
        batch had been enqueued row by row.
        """
        self.materialise(batch.shape[1])
        count = batch.shape[0]
        dropped = max(0, count - self.size)
        # the write position stays on the device: reading it would stall the GPU every step
        rows = (self.ptr + dropped + torch.arange(count - dropped, device=self.keys.device)) % self.size
        self.keys[rows] = batch[dropped:].detach().to(self.keys.dtype)
        self.ptr.add_(count).remainder_(self.size)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any], strict: bool, *args: Any
    ) -> None:
        saved = state_dict.get(prefix + "keys")
        if self.dim is None and saved is not None and saved.ndim == 2 and saved.shape[1] > 0:
            self.keys = torch.empty(self.size, saved.shape[1], device=self.keys.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
