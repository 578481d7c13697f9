"""Split BatchNorm: one process emulating the per-GPU BatchNorm of multi-GPU MoCo.

Under DDP each GPU normalises its own share of the batch, and MoCo's
shuffling BN (He et al. 2020, section 3.3) hands the key encoder a different
share than the query encoder, so a key's BatchNorm statistics never come from
the sub-batch holding its own query. On one process both encoders would see
the whole batch, and the positive pair would share its statistics: a leak the
network can exploit to find its key without learning anything. The MoCo
authors' single-GPU demo (facebookresearch/moco, colab notebook) emulates
the GPUs with ``SplitBatchNorm`` (``bn_splits=8``). Here the encoder runs on
each sub-batch in turn, which gives every BatchNorm layer the same per-split
statistics without replacing any layer of the backbone.

Running statistics then move once per sub-batch instead of once per step,
so, like the running statistics of one GPU in DDP, they average about the
last ten sub-batches (BatchNorm's momentum 0.1).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def has_batchnorm(module: nn.Module) -> bool:
    """True when ``module`` holds a BatchNorm layer (1d, 2d, 3d or synchronised): only those mix rows of a batch."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def check_splits(batch_size: int, splits: int) -> None:
    """Refuse a batch that cannot be cut into ``splits`` equal sub-batches of at least 2 images.

    A BatchNorm sub-batch of one image would normalise each image by itself.
    """
    if batch_size < 2 * splits or batch_size % splits:
        raise ValueError(
            f"bn_splits={splits} needs a batch divisible by {splits} with at least {2 * splits} images "
            f"(2 per BatchNorm sub-batch), got a batch of {batch_size}; use a --pretrain-batch-size that is a "
            f"multiple of {splits} and >= {2 * splits}, or set --pretrain-option bn_splits to a divisor of "
            f"{batch_size} that is at most {batch_size // 2} (1 turns split BatchNorm off)"
        )


def split_forward(
    encoder: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, splits: int, *, shuffle: bool = False
) -> torch.Tensor:
    """``encoder`` on ``splits`` contiguous sub-batches of ``batch`` (B, ...), outputs in ``batch``'s row order.

    With ``shuffle`` the rows are first permuted by ``torch.randperm`` from
    the global generator of ``batch``'s device (seeded by the engine, so runs
    repeat), and the outputs are put back in the original order: each
    sub-batch is then a random draw of rows, as a GPU's share after shuffling
    BN. ``splits=1`` is a plain call. Gradients flow as through ``encoder``.
    """
    check_splits(batch.shape[0], splits)
    if splits == 1 and not shuffle:
        return encoder(batch)
    permutation = torch.randperm(batch.shape[0], device=batch.device) if shuffle else None
    rows = batch if permutation is None else batch[permutation]
    outputs = torch.cat([encoder(chunk) for chunk in rows.chunk(splits)])
    if permutation is None:
        return outputs
    return outputs[torch.argsort(permutation)]
