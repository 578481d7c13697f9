"""Embedding and evaluation: R@k and uniformity of a two-branch model on a subset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader

from . import distributed, metrics
from .data import CrossViewPairs, ImageList
from .device import autocast, to_device
from .loaders import Reader, Views, normalize
from .model import TwoBranchNet

UNIFORMITY_SAMPLE = 4096


@dataclass
class Evaluation:
    """What one evaluation measured."""

    metrics: dict[str, float]
    uniformity: dict[str, float]
    num_queries: int
    num_references: int
    ground: np.ndarray
    aerial: np.ndarray


@torch.no_grad()
def embed(model: TwoBranchNet, branch: str, images: ImageList, reader: Reader, device: torch.device,
          batch_size: int, indices: Sequence[int] | None = None, progress: Progress | None = None,
          workers: int = 0) -> np.ndarray:
    """L2-normalised float32 embeddings of ``images`` (or the ``indices`` subset) through one branch.

    Under ``torchrun`` each rank embeds a contiguous slice and every rank
    returns the whole matrix, in order.
    """
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    total = len(indices)
    sharded = distributed.active() and total >= distributed.world_size()
    dataset = Views(images, reader, indices[distributed.shard(total)] if sharded else indices)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    task = progress.add_task(f"embed {branch}", total=len(loader), info="") if progress else None
    chunks = []
    for batch in loader:
        with autocast(device):
            chunks.append(model.embed(branch, normalize(to_device(batch, device))).float())
        if progress is not None:
            progress.advance(task)
    model.train(was_training)
    if progress is not None:
        progress.remove_task(task)
    if not chunks:
        return np.zeros((0, 0), np.float32)
    local = torch.cat(chunks)
    return (distributed.gather_rows(local, total) if sharded else local).cpu().numpy()


def evaluate(model: TwoBranchNet, pairs: CrossViewPairs, readers: dict[str, Reader],
             device: torch.device, batch_size: int, query_indices: Sequence[int] | None = None,
             progress: Progress | None = None, seed: int = 0, workers: int = 0, *,
             exact_recall: bool = True) -> Evaluation | None:
    """Rank every chosen query against the whole aerial gallery; measure uniformity.

    Under ``torchrun`` the ranks share the embedding and rank 0 alone ranks
    the gathered matrices (exactly, as on one process); the other ranks get None.

    Uniformity (eq 3.6-3.8) is computed on the queries and their positive
    tiles, on a seeded sample of at most ``UNIFORMITY_SAMPLE`` pairs.

    ``exact_recall=False`` skips the exact ranking (``metrics`` is then empty),
    for a caller that ranks the returned embeddings through an approximate
    index (:func:`cvbench.retrieval.approximate_recall`).
    """
    queries = np.arange(pairs.num_queries) if query_indices is None else np.asarray(query_indices)
    distributed.broadcast_buffers(model)
    ground = embed(model, "ground", pairs.ground, readers["ground"], device, batch_size, queries, progress, workers)
    aerial = embed(model, "aerial", pairs.aerial, readers["aerial"], device, batch_size, None, progress, workers)
    if not distributed.is_main():
        return None
    positives = pairs.positives[queries]
    semi = pairs.semi_positives[queries] if pairs.semi_positives is not None else None
    also = pairs.also_correct[queries] if pairs.also_correct is not None else None
    scores = (metrics.recall(ground, aerial, positives, semi_positives=semi, also_correct=also)
              if exact_recall else {})
    sample = np.arange(len(queries))
    if len(sample) > UNIFORMITY_SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(len(sample), UNIFORMITY_SAMPLE, replace=False))
    uniformity = metrics.uniformity_report(ground[sample], aerial[positives[sample]])
    return Evaluation(scores, uniformity, len(queries), pairs.num_references, ground, aerial)
