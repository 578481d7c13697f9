"""The exact ranking engine: a query chunk's comparisons with the gallery, swept in tiles where the embeddings are.

What :mod:`cvbench.evaluation.rank_counts` asks its questions of (:class:`ChunkScores`), and
:func:`cvbench.metrics.average_precision` ranks every correct reference with.

**Exactness.** A float32 matrix product is not a function of its two vectors
alone: a BLAS sums a row in an order that depends on the shape of the block (and
even on the column), so two identical references can get scores one ulp apart
and a query's scores change with the tile size or the device. Comparing those
raw numbers would turn exact ties into random ranks. Here a score means the
exact real inner product of the float32 unit vectors, and every comparison is
decided exactly: the float32 product settles every reference whose score differs
from the target's by more than its rounding-error bound (Higham's gamma_D bound,
:func:`~cvbench.evaluation.exact_scores.tie_window`, which holds for any
summation order, fused or split, on any device); the few that fall inside the
bound are compared exactly from the vectors on the host (float64 with its own
error bound, then ``math.fsum`` when even that cannot tell). The target's own
score is computed once in float64, so every tile compares with the same
thresholds. Identical references are merged before the product, so a collapsed
gallery costs nothing extra. The numbers therefore depend on neither the chunk
size, the tile size, the device, the input type nor the BLAS.

**Where it runs** (:class:`Placement`). On the device of the embeddings (CUDA,
MPS or the CPU), or the one :func:`ranking_device` names: the unit vectors are
made on the host, so every device ranks the same float32 vectors, and the
gallery is copied to the device once when it fits in ``max_device_bytes``;
otherwise it streams from host memory in parts of that size, for every sweep.
The CPU runs the same loop with the gallery in place.

**Speed.** As faiss's blocked exhaustive search does, one product computes a
tile of scores small enough to stay in cache, and the tile is reduced at once
to per-row counts (references above the target's upper bound, references at or
above its lower bound); no row of scores is ever written to memory. On the
CPU the query blocks are shared among a pool of threads, each running
single-threaded products and reductions, so no op waits at a parallel region's
barrier (slow when other processes compete for the cores); on an accelerator
one large tile at a time runs on the whole device.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from . import exact_scores
from .inputs import check_positive_int

SCORE_BLOCK_ELEMENTS = 2**26
"""Chunk x columns of a float32 block of :func:`default_chunk` (256 MiB): :mod:`cvbench.evaluation.topk`'s
candidate search, and the chunked products of ``benchmarks/perf/recall.py``."""

QUERY_CHUNK = 4096
"""Default queries per chunk: the unit of bookkeeping (targets, counts, close cases), not of memory."""

CPU_BLOCK_ROWS = 256  # queries per CPU tile: a 256 KiB block of queries stays in a core's cache
CPU_TILE_COLUMNS = 1024  # references per CPU tile: a 1 MiB tile of scores, and its mask, stay in L2
DEVICE_TILE_ELEMENTS = 2**26  # scores per accelerator tile (256 MiB float32)
_FALLBACK_FRACTION = 8  # rescore rows in float64 when over 1/8 of their comparisons are undecided
_MAX_CLOSE_CASES = 2**23  # and never collect more close cases than this per sweep (192 MiB of int64 indices)

_RANKING_DEVICE: ContextVar[torch.device | None] = ContextVar("ranking_device", default=None)


@contextmanager
def ranking_device(device: torch.device | str | None) -> Iterator[None]:
    """Rank on ``device`` inside the block unless a call names its own (an evaluation ranks on the run's device)."""
    token = _RANKING_DEVICE.set(None if device is None else torch.device(device))
    try:
        yield
    finally:
        _RANKING_DEVICE.reset(token)


@dataclass(frozen=True)
class Placement:
    """Where the tiles are computed, and how many bytes of the gallery may sit there at once (None: all of it)."""

    device: torch.device
    max_device_bytes: int | None = None


def placement(inputs: Sequence[object], device: torch.device | str | None = None,
              max_device_bytes: int | None = None) -> Placement:
    """The :class:`Placement` of a call: ``device`` if given, else that of the first torch input, else
    :func:`ranking_device`'s, else the CPU.

    Without ``max_device_bytes`` the CPU keeps the whole gallery in place and
    an accelerator takes at most half of its free memory.
    """
    if device is None:
        device = next((x.device for x in inputs if isinstance(x, torch.Tensor)), None) or _RANKING_DEVICE.get()
    where = torch.device("cpu" if device is None else device)
    if (where.type == "cuda" and not torch.cuda.is_available()) or (
            where.type == "mps" and not torch.backends.mps.is_available()):
        raise ValueError(f"device {str(where)!r} is not available here; rank on 'cpu' or an available device")
    if max_device_bytes is not None:
        max_device_bytes = check_positive_int(max_device_bytes, "max_device_bytes")
    elif where.type == "cuda":
        max_device_bytes = torch.cuda.mem_get_info(where)[0] // 2
    elif where.type == "mps":
        max_device_bytes = torch.mps.recommended_max_memory() // 2
    return Placement(where, max_device_bytes)


@contextmanager
def ieee_float32_matmul() -> Iterator[None]:
    """Keep float32 products in IEEE float32 while scoring, on the CPU and on CUDA.

    The tie window assumes float32 rounding; a process that allowed bf16 or
    TF32 products for training would break it, so they are switched off here
    and restored afterwards.
    """
    backends = [torch.backends.mkldnn.matmul, torch.backends.cuda.matmul]
    previous = [getattr(backend, "fp32_precision", "ieee") for backend in backends]
    for backend, value in zip(backends, previous):
        if value != "ieee":
            backend.fp32_precision = "ieee"
    try:
        yield
    finally:
        for backend, value in zip(backends, previous):
            if value != "ieee":
                backend.fp32_precision = value


def default_chunk(columns: int) -> int:
    """Queries per block so that a (chunk, columns) float32 block is about 256 MiB (the score blocks of topk)."""
    return max(1, SCORE_BLOCK_ELEMENTS // columns)


# ----------------------------------------------------------------------- the sweep


@dataclass
class _Swept:
    """Per (row, slot): references above the upper bound (``above``) and at or above the lower one (``reach``),
    duplicates included; with ``rows``, ``slots``, ``cols`` the close cases in between (None if not collected)."""

    above: torch.Tensor
    reach: torch.Tensor
    rows: torch.Tensor | None = None
    slots: torch.Tensor | None = None
    cols: torch.Tensor | None = None


class GalleryStream:
    """The gallery's unit rows on the ranking's device: copied once when they fit, else streamed in parts."""

    def __init__(self, gallery: exact_scores.Gallery, where: Placement) -> None:
        self.gallery = gallery
        self.where = where
        vectors = gallery.vectors
        row_bytes = vectors.shape[1] * vectors.element_size()
        limit = where.max_device_bytes
        self.part_rows = vectors.shape[0] if limit is None else max(1, limit // row_bytes)
        self.resident = vectors.to(where.device) if self.part_rows >= vectors.shape[0] else None
        exact = torch.float32 if gallery.size < 2**24 else torch.float64  # its integer counts stay exact
        counts = torch.ones(vectors.shape[0]) if gallery.counts is None else gallery.counts
        self.weights = counts.to(where.device, exact)  # how many references each row stands for

    def parts(self, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
        """(first gallery row, unit rows on ``device``) for each part of the gallery."""
        vectors = self.gallery.vectors
        if device.type == "cpu" and self.where.max_device_bytes is None:
            yield 0, vectors
            return
        if self.resident is not None and device == self.where.device:  # not resident.device: cuda:0 is not cuda
            yield 0, self.resident
            return
        for start in range(0, vectors.shape[0], self.part_rows):
            yield start, vectors[start:start + self.part_rows].to(device)


def _sweep_block(queries: torch.Tensor, high: torch.Tensor, low: torch.Tensor, part: torch.Tensor, first: int,
                 weights: torch.Tensor, tile_columns: int, collect: bool, budget: int) -> _Swept | None:
    """One block of query rows against one gallery part, tile by tile: each tile reduced while in cache.

    ``high`` and ``low`` (rows, slots) are the thresholds; None when more than
    ``budget`` close cases turn up (the caller rescores in float64). A tile is
    compared into a 0.0/1.0 mask and counted by a matrix-vector product with
    the references' multiplicities, added straight into the running counts: no
    integer copy of the mask, one op per count. The counts are exact, being
    integers below 2^24 (float32) or 2^53 (float64).
    """
    rows, slots = high.shape
    dtype, device, exact = queries.dtype, queries.device, weights.dtype
    counts = torch.zeros((2, slots, rows), dtype=exact, device=device)  # above high, at or above low
    tile_buffer = torch.empty(rows * tile_columns, dtype=dtype, device=device)
    mask_buffer = torch.empty(rows * tile_columns, dtype=exact, device=device)
    found: list[tuple[torch.Tensor, int, torch.Tensor]] = []
    total = 0
    for start in range(0, part.shape[0], tile_columns):
        references = part[start:start + tile_columns].to(dtype)
        width = references.shape[0]
        scores = torch.mm(queries, references.t(), out=tile_buffer[: rows * width].view(rows, width))
        mask = mask_buffer[: rows * width].view(rows, width)
        tile_weights = weights[first + start:first + start + width]
        for slot in range(slots):
            if not collect:
                counts[0, slot].addmv_(torch.gt(scores, high[:, slot:slot + 1], out=mask), tile_weights)
                counts[1, slot].addmv_(torch.ge(scores, low[:, slot:slot + 1], out=mask), tile_weights)
                continue
            over = torch.mv(torch.gt(scores, high[:, slot:slot + 1], out=mask), tile_weights)
            at_least = torch.mv(torch.ge(scores, low[:, slot:slot + 1], out=mask), tile_weights)
            counts[0, slot] += over
            counts[1, slot] += at_least
            close_rows = (at_least > over).nonzero()[:, 0]
            if close_rows.numel():
                close = scores[close_rows]
                band = torch.ge(close, low[close_rows, slot:slot + 1]).logical_and_(
                    torch.le(close, high[close_rows, slot:slot + 1]))
                row, col = band.nonzero(as_tuple=True)
                total += row.numel()
                if total > budget:
                    return None
                found.append((close_rows[row], slot, col + first + start))
    above, reach = counts.long().transpose(1, 2)
    if not collect:
        return _Swept(above, reach)
    empty = torch.empty(0, dtype=torch.int64, device=device)
    return _Swept(above, reach, torch.cat([empty] + [r for r, _, _ in found]),
                  torch.cat([empty] + [torch.full_like(r, s) for r, s, _ in found]),
                  torch.cat([empty] + [c for _, _, c in found]))


@contextmanager
def _worker_pool(threads: int) -> Iterator[ThreadPoolExecutor | None]:
    """A pool of ``threads`` workers whose torch ops run single-threaded (None for one thread)."""
    if threads <= 1:
        yield None
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads) as pool:
            yield pool
    finally:
        torch.set_num_threads(previous)


def _sweep_tiles(queries: torch.Tensor, high: torch.Tensor, low: torch.Tensor, stream: GalleryStream,
                 device: torch.device, collect: bool, budget: int) -> _Swept | None:
    """Every gallery part against every block of query rows on ``device``; the host's rows are split among a pool.

    Returns host tensors, with the close cases' rows as row numbers of ``queries``.
    """
    dtype = queries.dtype
    queries, high, low = queries.to(device), high.to(device, dtype), low.to(device, dtype)
    weights = stream.weights.to(device)
    count = queries.shape[0]
    on_cpu = device.type == "cpu"
    block_rows = CPU_BLOCK_ROWS if on_cpu else count
    columns = CPU_TILE_COLUMNS if on_cpu else max(1024, DEVICE_TILE_ELEMENTS // count)
    blocks = list(range(0, count, block_rows))
    threads = min(torch.get_num_threads(), len(blocks)) if on_cpu else 1
    # each block's share of the budget, for the whole sweep: what one gallery part collects, the next cannot
    budget_left = {start: max(1, budget * min(block_rows, count - start) // count) for start in blocks}
    merged = _Swept(torch.zeros(high.shape, dtype=torch.int64), torch.zeros(high.shape, dtype=torch.int64))
    close: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    with _worker_pool(threads) as pool, ieee_float32_matmul():
        for first, part in stream.parts(device):
            columns_here = min(columns, part.shape[0])

            def run(start: int, first: int = first, part: torch.Tensor = part,
                    columns_here: int = columns_here) -> _Swept | None:
                stop = start + block_rows
                with torch.no_grad():  # thread-local, unlike the precision flags set around the pool
                    return _sweep_block(queries[start:stop], high[start:stop], low[start:stop], part, first,
                                        weights, columns_here, collect, budget_left[start])

            results = list(pool.map(run, blocks)) if pool is not None else [run(start) for start in blocks]
            if any(result is None for result in results):
                return None
            for start, result in zip(blocks, results):
                merged.above[start:start + block_rows] += result.above.cpu()
                merged.reach[start:start + block_rows] += result.reach.cpu()
                if collect:
                    budget_left[start] -= result.rows.numel()
                    close.append((result.rows.cpu() + start, result.slots.cpu(), result.cols.cpu()))
    if collect:
        empty = torch.empty(0, dtype=torch.int64)
        merged.rows, merged.slots, merged.cols = (torch.cat([empty] + [case[i] for case in close]) for i in range(3))
    return merged


class ChunkScores:
    """Exact comparisons of one chunk of query rows with the gallery, each a sweep of tiles on the ranking's device.

    A target is one gallery row per query row and slot: ``targets`` is (c,) or
    (c, K) with -1 for an empty slot, and each slot gets its own counts from the
    same tiles, so K targets cost one product. When a float32 sweep leaves too
    many comparisons within the tie window for exact comparison to be cheap
    (near-collapsed embeddings), the rows are swept again in float64 on the
    host, whose window is 2^29 times narrower.
    """

    def __init__(self, queries: torch.Tensor, gallery: exact_scores.Gallery, stream: GalleryStream) -> None:
        self.queries = queries
        self.gallery = gallery
        self.stream = stream

    def subset(self, rows: torch.Tensor) -> ChunkScores:
        """The same comparisons for some rows only."""
        if rows.shape[0] == self.queries.shape[0]:
            return self
        return ChunkScores(self.queries[rows], self.gallery, self.stream)

    def _thresholds(self, targets: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) = each target's score -+ the tie window of ``dtype``; +inf for an empty slot.

        The score is computed in float64 (within its own error, far below the
        window's slack) and rounded to ``dtype``, which the window's slack covers.
        """
        window = exact_scores.tie_window(self.queries.shape[1], dtype)
        q64 = self.queries.double()
        scores = torch.stack([torch.einsum("id,id->i", q64, self.gallery.vectors[column.clamp(min=0)].double())
                              for column in targets.t()], dim=1)
        scores = scores.masked_fill(targets < 0, float("inf"))
        return (scores - window).to(dtype), (scores + window).to(dtype)

    def _sweep(self, targets: torch.Tensor, collect: bool) -> _Swept:
        """Counts of each (row, slot), and its close cases when ``collect``: float32 where the ranking runs,
        float64 on the host where too many comparisons are close."""
        low, high = self._thresholds(targets, torch.float32)
        budget = min(self.queries.shape[0] * targets.shape[1] * self.gallery.vectors.shape[0] // _FALLBACK_FRACTION,
                     _MAX_CLOSE_CASES) if collect else 0
        swept = _sweep_tiles(self.queries, high, low, self.stream, self.stream.where.device, collect, budget)
        if swept is None:
            low, high = self._thresholds(targets, torch.float64)
            swept = _sweep_tiles(self.queries.double(), high, low, self.stream, torch.device("cpu"), collect,
                                 2**62)
        return swept

    def _weights(self, cols: torch.Tensor) -> torch.Tensor:
        """How many references each gallery row in ``cols`` stands for."""
        return torch.ones_like(cols) if self.gallery.counts is None else self.gallery.counts[cols]

    def exact_counts(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row (and slot), (references scoring strictly above the target, references scoring exactly the same).

        Both count references, duplicates included; the second includes the
        target's own gallery row, so it is at least 1 (for an empty slot: 0 and 1).
        """
        single = targets.dim() == 1
        table = targets[:, None] if single else targets
        swept = self._sweep(table, collect=True)
        rows, slots, cols = swept.rows, swept.slots, swept.cols
        keep = cols != table[rows, slots]
        rows, slots, cols = rows[keep], slots[keep], cols[keep]
        slot_count = table.shape[1]
        pair_rows, pair_index = torch.unique(rows * slot_count + slots, return_inverse=True)
        signs = exact_scores.exact_signs(self.queries[pair_rows // slot_count], self.gallery.vectors, pair_index,
                                         cols, table.reshape(-1)[pair_rows])
        higher, equal = signs > 0, signs == 0
        above = swept.above.index_put((rows[higher], slots[higher]), self._weights(cols[higher]), accumulate=True)
        same = torch.where(table >= 0, self._weights(table.clamp(min=0)), torch.ones_like(table))
        same = same.index_put((rows[equal], slots[equal]), self._weights(cols[equal]), accumulate=True)
        return (above[:, 0], same[:, 0]) if single else (above, same)

    def bracket(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row (and slot), (references certainly above the target, references not certainly below it less one).

        The exact count above lies in between, and so does the count above
        plus the count tied with the target (itself excluded); both come from
        one sweep, without collecting the close cases.
        """
        single = targets.dim() == 1
        swept = self._sweep(targets[:, None] if single else targets, collect=False)
        lower, upper = swept.above, swept.reach - 1
        return (lower[:, 0], upper[:, 0]) if single else (lower, upper)


def score_chunks(queries: torch.Tensor, gallery: exact_scores.Gallery, chunk: int,
                 where: Placement = Placement(torch.device("cpu"))) -> Iterator[tuple[int, ChunkScores]]:
    """(first query row, its chunk's :class:`ChunkScores`) for each chunk of ``chunk`` unit-row queries.

    The gallery goes to ``where`` once (or streams there per sweep, when it
    does not fit); products run in IEEE float32 (:func:`ieee_float32_matmul`).
    """
    stream = GalleryStream(gallery, where)
    for start in range(0, queries.shape[0], chunk):
        yield start, ChunkScores(queries[start:start + chunk], gallery, stream)
