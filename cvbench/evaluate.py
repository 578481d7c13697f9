"""Embedding and evaluation: R@k and uniformity of a two-branch model on a subset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader

from . import metrics
from .data import CrossViewPairs, ImageList
from .device import autocast
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
    """L2-normalised float32 embeddings of ``images`` (or the ``indices`` subset) through one branch."""
    dataset = Views(images, reader, indices)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    was_training = model.training
    model.eval()
    task = progress.add_task(f"embed {branch}", total=len(loader), info="") if progress else None
    chunks = []
    for batch in loader:
        with autocast(device):
            chunks.append(model.embed(branch, normalize(batch.to(device))).float().cpu())
        if progress is not None:
            progress.advance(task)
    model.train(was_training)
    if progress is not None:
        progress.remove_task(task)
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)


def evaluate(model: TwoBranchNet, pairs: CrossViewPairs, readers: dict[str, Reader],
             device: torch.device, batch_size: int, query_indices: Sequence[int] | None = None,
             progress: Progress | None = None, seed: int = 0, workers: int = 0) -> Evaluation:
    """Rank every chosen query against the whole aerial gallery; measure uniformity.

    Uniformity (eq 3.6-3.8) is computed on the queries and their positive
    tiles, on a seeded sample of at most ``UNIFORMITY_SAMPLE`` pairs.
    """
    queries = np.arange(pairs.num_queries) if query_indices is None else np.asarray(query_indices)
    ground = embed(model, "ground", pairs.ground, readers["ground"], device, batch_size, queries, progress, workers)
    aerial = embed(model, "aerial", pairs.aerial, readers["aerial"], device, batch_size, None, progress, workers)
    positives = pairs.positives[queries]
    semi = pairs.semi_positives[queries] if pairs.semi_positives is not None else None
    also = pairs.also_correct[queries] if pairs.also_correct is not None else None
    scores = metrics.recall(ground, aerial, positives, semi_positives=semi, also_correct=also)
    sample = np.arange(len(queries))
    if len(sample) > UNIFORMITY_SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(len(sample), UNIFORMITY_SAMPLE, replace=False))
    uniformity = metrics.uniformity_report(ground[sample], aerial[positives[sample]])
    return Evaluation(scores, uniformity, len(queries), pairs.num_references, ground, aerial)
