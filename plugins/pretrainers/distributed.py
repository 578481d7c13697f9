"""Cross-process helpers for MoCo-style training under DistributedDataParallel.

MoCo (He et al. 2020, section 3.3) needs two collective operations:

- the keys of every process enter each process's queue (``concat_all_gather``);
- "shuffling BN": the key encoder sees its batch shuffled across processes, so
  the BatchNorm statistics of a key never come from the sub-batch holding its
  own query, which would leak the positive pair (``batch_shuffle`` /
  ``batch_unshuffle``, the gather/broadcast index trick of the authors'
  ``moco/builder.py``).

Every function is a no-op when ``torch.distributed`` is not initialised: on one
process there is nothing to shuffle across. ``mocov2`` then emulates the GPUs
with split BatchNorm instead (:mod:`.split_batchnorm`). All processes must
hold batches of the same size (``drop_last=True``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_initialised() -> bool:
    """True when a default process group exists."""
    return dist.is_available() and dist.is_initialized()


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Rows of ``tensor`` (B, ...) from every process, in rank order: (world_size * B, ...). No gradient."""
    if not is_initialised():
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered)


@torch.no_grad()
def batch_shuffle(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deal this process a random slice of the batch gathered from all processes.

    Rank 0 draws one permutation of the ``world_size * B`` rows and broadcasts
    it; every rank takes its contiguous share of the permuted rows.

    Returns:
        ``(shuffled (B, ...), unshuffle_index (world_size * B,))``; pass the
        index to :func:`batch_unshuffle`. Without a process group the batch
        comes back untouched with the identity index.
    """
    if not is_initialised():
        return batch, torch.arange(batch.shape[0], device=batch.device)
    gathered = concat_all_gather(batch)
    permutation = torch.randperm(gathered.shape[0], device=batch.device)
    dist.broadcast(permutation, src=0)
    mine = permutation.view(dist.get_world_size(), -1)[dist.get_rank()]
    return gathered[mine], torch.argsort(permutation)


@torch.no_grad()
def batch_unshuffle(outputs: torch.Tensor, unshuffle_index: torch.Tensor) -> torch.Tensor:
    """Undo :func:`batch_shuffle` on per-row outputs (B, ...): row i belongs to this process's input row i again."""
    if not is_initialised():
        return outputs
    gathered = concat_all_gather(outputs)
    mine = unshuffle_index.view(dist.get_world_size(), -1)[dist.get_rank()]
    return gathered[mine]
