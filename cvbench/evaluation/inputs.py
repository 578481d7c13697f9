"""Checked inputs of retrieval: embeddings as float rows, reference indices as vectors and tables.

Every retrieval function (:mod:`cvbench.metrics`, :mod:`cvbench.evaluation.exact_ranking`,
:mod:`cvbench.evaluation.retrieval`) takes numpy arrays, torch tensors or nested
sequences; these helpers turn them into torch tensors of the expected shape
and raise a ``ValueError`` that names the argument and says what was
expected (a NaN row, an index out of range, a ragged list).
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

def as_matrix(x: ArrayLike, name: str, dtype: torch.dtype) -> torch.Tensor:
    """Return ``x`` as a fresh, contiguous CPU (rows, D) tensor of ``dtype``, validated.

    Raises ValueError for a wrong rank, an empty matrix, a non-real dtype or a
    value that is NaN or infinite once converted (1e39 overflows float32).
    """
    if isinstance(x, torch.Tensor):
        source = x.detach()
        if source.is_complex() or source.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers, got dtype {source.dtype}")
    else:
        source = np.asarray(x)
        if source.dtype.kind not in "fiu":
            raise ValueError(f"{name} must hold real numbers, got dtype {source.dtype}")
    shape = matrix_shape(source, name)
    out = torch.empty(shape, dtype=dtype)
    if isinstance(source, torch.Tensor):
        out.copy_(source)
    else:  # numpy casts any dtype and byte order, and reads read-only and memory-mapped arrays
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf, reported just below
            out.numpy()[...] = source
    low, high = torch.aminmax(out)  # NaN propagates, so one cheap reduction checks every value
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        row = int((~torch.isfinite(out).all(dim=1)).nonzero()[0, 0])
        raise ValueError(f"{name} row {row} has NaN or infinite values (as {dtype}); embeddings must be finite")
    return out


def matrix_shape(x: ArrayLike, name: str) -> tuple[int, int]:
    """(rows, dim) of a 2-D, non-empty ``x``, without converting it; ValueError naming ``name`` otherwise."""
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D (count, dim) matrix, got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {shape}")
    return int(shape[0]), int(shape[1])


def normalize_rows_(x: torch.Tensor, name: str, row_ids: torch.Tensor | None = None) -> torch.Tensor:
    """L2-normalise the rows of ``x`` in place and return it.

    Rows are first divided by their largest magnitude so that no square
    overflows or underflows, whatever the scale of the input. A zero row has no
    direction, so cosine similarity is undefined for it: ValueError, naming the
    row (``row_ids`` maps rows of ``x`` to the caller's numbering).
    """
    scale = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_())
    zero = scale[:, 0] == 0
    if bool(zero.any()):
        row = int(zero.nonzero()[0, 0])
        row = int(row_ids[row]) if row_ids is not None else row
        raise ValueError(f"{name} row {row} is all zeros; cosine similarity needs a non-zero embedding")
    x.div_(scale)
    x.div_(torch.linalg.vector_norm(x, dim=1, keepdim=True))
    return x


def as_unit_rows(x: ArrayLike, name: str = "embeddings", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Validate ``x`` (N, D) (numpy or torch, any real dtype) and return its rows L2-normalised.

    This is the normalisation every metric here (and :mod:`cvbench.evaluation.retrieval`)
    applies: a fresh contiguous CPU tensor of ``dtype``; ValueError names the
    problem (shape, emptiness, NaN/inf, all-zero row).
    """
    return normalize_rows_(as_matrix(x, name, dtype), name)


def as_index_vector(values: ArrayLike, name: str, length: int, bound: int) -> torch.Tensor:
    """``values`` as an int64 tensor of shape (length,) with entries in [0, bound)."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(
            f"{name} must hold one reference index per query: expected shape ({length},), got {array.shape}"
        )
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer reference indices, got dtype {array.dtype}")
    bad = (array < 0) | (array >= bound)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {array[i]} is out of range for {bound} references")
    return torch.from_numpy(array.astype(np.int64))


def as_index_table(values: ArrayLike, length: int, bound: int, name: str = "semi_positives") -> torch.Tensor:
    """Per-query reference lists (semi-positives, also-correct) as int64 (length, K) padded with -1.

    A list of lists may be ragged.
    """
    if isinstance(values, (list, tuple)):
        if len(values) != length:
            raise ValueError(f"{name} must have one row per query: expected {length} rows, got {len(values)}")
        rows = [np.asarray(row).reshape(-1) for row in values]
        for i, row in enumerate(rows):
            if row.size and row.dtype.kind not in "iu":
                raise ValueError(f"{name}[{i}] must be integer reference indices, got dtype {row.dtype}")
        array = np.full((length, max((row.size for row in rows), default=0)), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            array[i, : row.size] = row
    else:
        array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        if array.ndim != 2 or array.shape[0] != length:
            raise ValueError(f"{name} must have shape ({length}, K), got {array.shape}")
        if array.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer reference indices (-1 pads), got dtype {array.dtype}")
    bad = (array < -1) | (array >= bound)
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{i}][{k}] = {array[i, k]} is out of range for {bound} references (-1 pads)")
    return torch.from_numpy(array.astype(np.int64))


def check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def as_reference_sets(values: ArrayLike, length: int, bound: int, name: str = "positives") -> torch.Tensor:
    """Each query's set of references as an int64 (length, K) table: -1 pads, no repeats, column 0 always set.

    ``values`` is one reference index per query (a vector (length,)), or a
    table (length, K) padded with -1, or a list of lists (several positives
    per query, as University-1652's satellite-to-drone protocol has). A row
    with no reference at all is refused, naming it.
    """
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else None
    if array is not None and array.ndim == 1 or (array is None and not isinstance(values, (list, tuple))
                                                  and np.asarray(values).ndim == 1):
        return as_index_vector(values, name, length, bound)[:, None]
    if isinstance(values, (list, tuple)) and all(np.ndim(row) == 0 for row in values):
        return as_index_vector(np.asarray(values), name, length, bound)[:, None]
    table = as_index_table(values, length, bound, name).numpy().copy()
    table.sort(axis=1)
    table[:, 1:][table[:, 1:] == table[:, :-1]] = -1  # repeats of a reference within a row
    table = -np.sort(-table, axis=1)  # the references first, padding last
    empty = np.flatnonzero(table[:, 0] < 0) if table.shape[1] else np.arange(length)
    if empty.size:
        raise ValueError(f"{name}[{int(empty[0])}] lists no reference; every query needs at least one correct one")
    width = int((table >= 0).sum(axis=1).max()) if length else 1
    return torch.from_numpy(np.ascontiguousarray(table[:, :width]))
