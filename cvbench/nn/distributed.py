"""Several processes (GPUs or machines) through ``torchrun`` and ``torch.distributed``.

``torchrun --nproc-per-node N -m cvbench run ...`` starts N copies of the
command with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set; :func:`setup` joins
them into one process group (NCCL on CUDA, gloo on the CPU). Every rank
builds the same model and reads the same data; they split each batch and each
evaluation between them:

- fine-tuning: every rank draws the same conflict-free batches and keeps its
  contiguous share (:func:`shard_batches`); the embeddings are gathered with
  their gradient (:func:`gather_with_grad`), so the loss sees the whole batch's
  negatives and the gradient equals one process's on the whole batch;
- pre-training: a ``DistributedSampler`` deals the images, the pretrainer's
  own collectives do the rest: MoCo's keys of every rank enter each rank's
  queue (:func:`concat_all_gather`) and its key encoder sees a batch shuffled
  across ranks (:func:`batch_shuffle` / :func:`batch_unshuffle`, "shuffling
  BN", He et al. 2020 section 3.3), so a key's BatchNorm statistics never
  come from the sub-batch holding its own query;
- evaluation: each rank embeds a contiguous slice, :func:`gather_rows`
  reassembles the full matrices in order, and rank 0 ranks them exactly;
- records: only rank 0 (:func:`is_main`) writes the run folder.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function is the
one-process identity, so the single-process path stays as it was.
"""

from __future__ import annotations

import datetime as _dt
import os
from contextlib import contextmanager
from typing import Any, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist

from ..errors import SpecError

T = TypeVar("T")

TIMEOUT = _dt.timedelta(minutes=60)
"""How long a rank waits in a collective: long enough for rank 0 to rank a city-scale gallery alone."""


def active() -> bool:
    """True when a process group with more than one rank exists."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, the one process that writes records, checkpoints and progress."""
    return rank() == 0


def launched() -> bool:
    """True when ``torchrun`` (or an equivalent launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` on a multi-GPU machine, else ``device``."""
    if device.type == "cuda" and launched() and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextmanager
def setup(device: torch.device) -> Iterator[torch.device]:
    """Join the ``torchrun`` process group for the duration of a command; yields this rank's device.

    NCCL for CUDA devices, gloo otherwise. Outside ``torchrun``, or when a
    group already exists (the caller set it up), it does nothing.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield local_device(device)
        return
    if not dist.is_available():
        raise SpecError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    device = local_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def broadcast_object(value: T) -> T:
    """Rank 0's ``value`` on every rank (e.g. the run folder it created)."""
    if not active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    if active():
        dist.barrier()


def shard(count: int, which: int | None = None) -> slice:
    """Rank ``which``'s (this rank's) contiguous share of ``count`` items; the first ranks take one more when it does not divide."""
    which = rank() if which is None else which
    size, extra = divmod(count, world_size())
    start = which * size + min(which, extra)
    return slice(start, start + size + (which < extra))


def shard_batches(batches: Sequence[list[int]]) -> list[list[int]]:
    """Each global batch cut to a multiple of the world size, and this rank's contiguous share of it.

    Every rank gets the same number of items per batch (``all_gather`` needs
    equal shapes); a batch with fewer items than ranks is dropped, and the
    gathered batch is the global batch in its original order, less at most
    ``world_size - 1`` items.
    """
    world, me = world_size(), rank()
    shares = []
    for batch in batches:
        per_rank = len(batch) // world
        if per_rank >= 1:
            shares.append(list(batch[me * per_rank:(me + 1) * per_rank]))
    return shares


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient of this rank's rows.

    Each rank computes the same loss on the gathered batch; the sum over ranks
    is ``world_size`` times the gradient of that loss, which DDP's average then
    brings back to exactly the one-process gradient. Built on ``all_reduce``
    (which gloo also has) rather than ``reduce_scatter`` (NCCL only).

    Kept by hand on purpose: ``torch.distributed.nn.functional.all_gather``
    gives the same gradients (the two-process test passes with it to 1e-5),
    but torch 2.14 deprecates it with a ``FutureWarning`` and names as its
    successor ``all_gather_single`` in the private
    ``torch.distributed._functional_collectives``; neither is an API to
    build on. Swap when torch has a public, differentiable all-gather.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rows = tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Rows of ``tensor`` (B, ...) from every rank in rank order, differentiable; the identity on one process."""
    return _GatherWithGrad.apply(tensor) if active() else tensor


@torch.no_grad()
def gather_rows(local: torch.Tensor, total: int) -> torch.Tensor:
    """Reassemble ``total`` rows that the ranks hold as their :func:`shard` slices, in order.

    Slices differ by at most one row; each is padded to the largest before
    ``all_gather`` and trimmed after.
    """
    if not active():
        return local
    longest = -(-total // world_size())
    padded = local.new_zeros((longest, *local.shape[1:]))
    padded[:local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    sizes = [len(range(total)[shard(total, r)]) for r in range(world_size())]
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Rows of ``tensor`` (B, ...) from every rank, in rank order: (world_size * B, ...). No gradient.

    Every rank must hold the same B (``drop_last=True``).
    """
    if not active():
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered)


@torch.no_grad()
def batch_shuffle(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deal this rank a random slice of the batch gathered from all ranks (MoCo's shuffling BN).

    Rank 0 draws one permutation of the ``world_size * B`` rows and
    broadcasts it; every rank takes its contiguous share of the permuted rows
    (the gather/broadcast index trick of the MoCo authors' ``builder.py``).

    Returns:
        ``(shuffled (B, ...), unshuffle_index (world_size * B,))``; pass the
        index to :func:`batch_unshuffle`. On one process the batch comes back
        untouched with the identity index: there is nothing to shuffle
        across (``mocov2`` then splits BatchNorm instead,
        :mod:`cvbench.nn.split_batchnorm`).
    """
    if not active():
        return batch, torch.arange(batch.shape[0], device=batch.device)
    gathered = concat_all_gather(batch)
    permutation = torch.randperm(gathered.shape[0], device=batch.device)
    dist.broadcast(permutation, src=0)
    mine = permutation.view(dist.get_world_size(), -1)[dist.get_rank()]
    return gathered[mine], torch.argsort(permutation)


@torch.no_grad()
def batch_unshuffle(outputs: torch.Tensor, unshuffle_index: torch.Tensor) -> torch.Tensor:
    """Undo :func:`batch_shuffle` on per-row outputs (B, ...): row i belongs to this rank's input row i again."""
    if not active():
        return outputs
    gathered = concat_all_gather(outputs)
    mine = unshuffle_index.view(dist.get_world_size(), -1)[dist.get_rank()]
    return gathered[mine]


@torch.no_grad()
def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers; the identity on one process.

    For a plugin that sets weights from data mid-training (NetVLAD's k-means
    start on the first batch): each rank saw its own batch, and DDP only
    copies parameters when it wraps the model.
    """
    if active():
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP copies them at the start of each training ``forward``; an evaluation
    that calls the network directly must sync them itself, or each rank would
    embed its slice with its own statistics and the gathered embeddings would
    belong to no single model.
    """
    if active():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` inside DistributedDataParallel when several ranks run; itself otherwise."""
    if not active() or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a :func:`wrap` (DDP) wrapper, or ``module`` itself."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module


def sync_batchnorm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm layers synchronised across ranks (CUDA only: PyTorch's SyncBatchNorm has no CPU kernel)."""
    if active() and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module
