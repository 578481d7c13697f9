"""Embedding and evaluation: a two-branch model's embeddings of a subset, measured by the selected metric plugins."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader

from ..contract import Conventions, Retrieval
from ..contract.metric import SECTIONS
from ..contract.registry import create, get_registry
from ..data import CrossViewPairs, ImageList
from ..data.loaders import Reader, Views, normalize
from ..errors import CvbenchError, PluginError
from ..nn import distributed
from ..nn.device import autocast, to_device
from ..nn.model import TwoBranchNet
from .exact_ranking import ranking_device


@dataclass
class Evaluation:
    """What one evaluation measured, and the embeddings it measured: the queries' and the gallery's."""

    metrics: dict[str, float]
    uniformity: dict[str, float]
    num_queries: int
    num_references: int
    query: np.ndarray
    reference: np.ndarray
    warnings: list[str]


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


Metrics = list[tuple[str, Callable[[Retrieval], dict[str, float]]]]


def build_metrics(names: Sequence[str], options: dict[str, dict[str, Any]] | None = None) -> Metrics:
    """The metric plugins ``names`` (``--metric``), each built with its ``--metric-option`` values."""
    options = options or {}
    return [(name, create("metric", name, **options.get(name, {}))) for name in names]


def measure(selected: Metrics, retrieval: Retrieval) -> dict[str, dict[str, float]]:
    """Every selected metric's values, by record section (``metrics``, ``uniformity``).

    A metric that fails, returns something other than named numbers, or
    returns a name another metric already gave is an error naming it.
    """
    sections: dict[str, dict[str, float]] = {section: {} for section in SECTIONS}
    given: dict[str, str] = {}
    for name, metric in selected:
        plugin = get_registry().get("metric", name)
        try:
            values = metric(retrieval)
        except CvbenchError:
            raise
        except Exception as exc:  # a plugin's own bug: named, not a traceback from inside it
            raise PluginError(f"metric {name!r} ({plugin.origin()}) failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(values, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in values.items()):
            raise PluginError(f"metric {name!r} ({plugin.origin()}) returned {type(values).__name__}; expected a dict "
                              "of names to numbers")
        for key, value in values.items():
            if key in given:
                raise PluginError(f"metrics {given[key]!r} and {name!r} both report {key!r}; select one of them")
            given[key] = name
            sections[metric.section][key] = float(value)
    return sections


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def evaluate(model: TwoBranchNet, pairs: CrossViewPairs, readers: dict[str, Reader],
             device: torch.device, batch_size: int, selected: Metrics, query_indices: Sequence[int] | None = None,
             progress: Progress | None = None, seed: int = 0, workers: int = 0,
             conventions: Conventions = Conventions()) -> Evaluation | None:
    """Embed every chosen query and the whole gallery, each through its view's branch, then compute the metrics.

    Under ``torchrun`` the ranks share the embedding and rank 0 alone
    measures the gathered matrices (exactly, as on one process); the other
    ranks get None. Each metric receives a :class:`cvbench.Retrieval` (with the
    run's ``conventions``, and the notes it may add to the record); with
    none selected only the embeddings come back (a caller that ranks them
    through an approximate index, :func:`cvbench.evaluation.retrieval.approximate_recall`).
    The exact ranking of the metrics runs on ``device``, streaming the gallery when it does not fit there.
    """
    queries = np.arange(pairs.num_queries) if query_indices is None else np.asarray(query_indices)
    distributed.broadcast_buffers(model)
    asked, gallery = pairs.query_view, pairs.gallery_view  # a protocol may query with aerial images
    query = embed(model, asked, pairs.queries, readers[asked], device, batch_size, queries, progress, workers)
    reference = embed(model, gallery, pairs.gallery, readers[gallery], device, batch_size, None, progress, workers)
    if not distributed.is_main():
        return None
    rows = (lambda meta: meta.iloc[queries].reset_index(drop=True) if len(meta.columns) else meta)
    retrieval = Retrieval(
        query=query, reference=reference, positives=pairs.positives[queries],
        semi_positives=pairs.semi_positives[queries] if pairs.semi_positives is not None else None,
        also_correct=pairs.also_correct[queries] if pairs.also_correct is not None else None,
        query_meta=rows(pairs.query_meta), reference_meta=pairs.gallery_meta, seed=seed, conventions=conventions,
        query_view=asked)
    with ranking_device(device):  # exact ranking runs where the model ran
        sections = measure(selected, retrieval)
    return Evaluation(sections["metrics"], sections["uniformity"], len(queries), pairs.num_references, query,
                      reference, list(retrieval.notes))
