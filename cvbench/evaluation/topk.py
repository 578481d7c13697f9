"""Each query's exact top-k references, as groups of references tied at exactly the same score.

What the metre-level metrics need (the top-1 tile's distance, SDM@K and
Dis@K over the top K): not only which references score highest, but which
of them tie exactly, so that a tie is counted under the run's ``ties``
convention rather than broken by the accident of an index or a summation
order. Candidates are scored in float64; the few whose float64
scores lie within the rounding window of one another are ordered by exact
comparisons (:func:`cvbench.evaluation.exact_scores.exact_signs`), so the
groups are exact and depend on neither the chunk size nor the device: the
candidates are found in float32 where the ranking runs, a gallery part at a
time (within the float32 tie window of the k-th best score), and only they
are scored in float64. Identical references are merged first, so a collapsed gallery
costs one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import exact_scores
from .exact_ranking import GalleryStream, default_chunk, ieee_float32_matmul, placement
from .inputs import ArrayLike, check_positive_int


@dataclass(frozen=True)
class TopGroups:
    """For each query, the tie groups that cover its first ``k`` ranking positions, best first.

    Flat arrays with one entry per member reference: ``query[j]`` is the
    query, ``reference[j]`` the reference, ``start[j]`` the 0-based ranking
    position where its group begins and ``size[j]`` how many references the
    group holds. A group that straddles position k is kept whole.
    """

    query: np.ndarray
    reference: np.ndarray
    start: np.ndarray
    size: np.ndarray
    k: int
    num_queries: int

    def slots(self, k: int | None = None) -> np.ndarray:
        """Per member, how many of the first ``k`` positions its group covers (0 past them)."""
        k = self.k if k is None else k
        return np.clip(np.minimum(self.start + self.size, k) - self.start, 0, None)


def _members(gallery: exact_scores.Gallery) -> list[np.ndarray]:
    """The reference indices behind each distinct gallery row, in index order."""
    if gallery.counts is None:
        return [np.array([m], dtype=np.int64) for m in range(gallery.size)]
    inverse = gallery.inverse.numpy()
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(gallery.counts.numpy())])
    return [order[bounds[u]: bounds[u + 1]] for u in range(len(bounds) - 1)]


def _exact_order(queries: torch.Tensor, vectors: torch.Tensor, row: int, cols: list[int]) -> list[list[int]]:
    """``cols`` (gallery rows, near-tied for query ``row``) split into exact tie groups, best first."""
    count = len(cols)
    pairs = [(i, j) for i in range(count) for j in range(count) if i != j]
    first = torch.tensor([cols[i] for i, _ in pairs])
    second = torch.tensor([cols[j] for _, j in pairs])
    signs = exact_scores.exact_signs(queries[[row] * len(pairs)], vectors, torch.arange(len(pairs)), first, second)
    beaten = [0] * count  # how many members score strictly above member j
    for (i, j), sign in zip(pairs, signs.tolist()):
        if sign > 0:
            beaten[j] += 1
    groups: dict[int, list[int]] = {}
    for j in range(count):
        groups.setdefault(beaten[j], []).append(cols[j])
    return [groups[level] for level in sorted(groups)]


def _candidates(part: torch.Tensor, stream: GalleryStream, k: int, counts: torch.Tensor,
                window: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, gallery rows) of every reference that may fill one of the first ``k`` positions of a row of ``part``.

    Two float32 passes over the gallery where the ranking runs: the first
    keeps each row's best scores, which say the score the k-th position needs;
    the second takes every reference within the float32 tie window of it.
    """
    device = stream.where.device
    queries = part.to(device)
    weights = counts.to(device)
    keep = min(k, counts.shape[0])
    best_scores = best_cols = None
    for first, gallery in stream.parts(device):
        scores, cols = torch.topk(torch.mm(queries, gallery.t()), min(keep, gallery.shape[0]), dim=1)
        if best_scores is not None:
            scores, cols = torch.cat([best_scores, scores], dim=1), torch.cat([best_cols, cols + first], dim=1)
            scores, picked = torch.topk(scores, min(keep, scores.shape[1]), dim=1)
            cols = cols.gather(1, picked)
        best_scores, best_cols = scores, cols
    covered = torch.cumsum(weights[best_cols], dim=1)
    reach = ((covered < k).sum(dim=1)).clamp_(max=best_cols.shape[1] - 1)
    threshold = best_scores.gather(1, reach[:, None]) - window  # everything that may rank within k
    rows, cols = [], []
    for first, gallery in stream.parts(device):
        row, col = (torch.mm(queries, gallery.t()) >= threshold).nonzero(as_tuple=True)
        rows.append(row.cpu())
        cols.append(col.cpu() + first)
    return torch.cat(rows), torch.cat(cols)


def exact_top(query: ArrayLike, reference: ArrayLike, k: int = 1, chunk_size: int | None = None,
              device: torch.device | str | None = None, max_device_bytes: int | None = None) -> TopGroups:
    """The exact tie groups covering each query's first ``k`` positions (see :class:`TopGroups`).

    The candidates are found in float32 where the ranking runs (``device``
    and ``max_device_bytes`` as for :func:`cvbench.metrics.ranks`), then
    scored in float64 and ordered exactly on the host.
    """
    k = check_positive_int(k, "k")
    where = placement((query, reference), device, max_device_bytes)
    queries, gallery = exact_scores.queries_and_gallery(query, reference)
    distinct = gallery.vectors.shape[0]
    counts = np.ones(distinct, dtype=np.int64) if gallery.counts is None else gallery.counts.numpy()
    members = _members(gallery)
    window = exact_scores.tie_window(queries.shape[1], torch.float64)
    chunk = default_chunk(2 * distinct) if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    stream = GalleryStream(gallery, where)
    out_query, out_ref, out_start, out_size = [], [], [], []
    with torch.no_grad(), ieee_float32_matmul():
        for first_row in range(0, queries.shape[0], chunk):
            part = queries[first_row: first_row + chunk]
            rows, cols = _candidates(part, stream, k, torch.from_numpy(counts),
                                     exact_scores.tie_window(queries.shape[1], torch.float32))
            values = torch.einsum("pd,pd->p", part[rows].double(), gallery.vectors[cols].double())
            order = np.lexsort((-values.numpy(), rows.numpy()))  # by row, best first
            rows, cols, values = rows.numpy()[order], cols.numpy()[order], values.numpy()[order]
            for row in np.unique(rows):
                picked = slice(*np.searchsorted(rows, [row, row + 1]))
                row_cols = cols[picked].tolist()
                groups, run = [], [row_cols[0]]
                for col, gap in zip(row_cols[1:], -np.diff(values[picked])):
                    if gap > window:
                        groups += _exact_order(part, gallery.vectors, int(row), run) if len(run) > 1 else [run]
                        run = [col]
                    else:
                        run.append(col)
                groups += _exact_order(part, gallery.vectors, int(row), run) if len(run) > 1 else [run]
                position = 0
                for group in groups:
                    refs = np.concatenate([members[u] for u in group])
                    out_query.append(np.full(len(refs), first_row + row))
                    out_ref.append(refs)
                    out_start.append(np.full(len(refs), position))
                    out_size.append(np.full(len(refs), len(refs)))
                    position += len(refs)
                    if position >= k:
                        break
    cat = (lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64))
    return TopGroups(cat(out_query), cat(out_ref), cat(out_start), cat(out_size), k, queries.shape[0])
