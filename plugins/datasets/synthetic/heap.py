"""The C heap of a generator worker process: keep freed memory for reuse, and back it with huge pages.

Building a city allocates and frees hundreds of arrays of a few megabytes.
By default glibc maps each from the system and unmaps it when freed, so the
kernel zero-fills fresh pages at the next array's first touch. Raising
glibc's thresholds lets freed arrays be reused: on the 2-core development
machine a worker then used about 11% less CPU per city, with half the page
faults (2026-12-06).

A forked worker still faults in each page of its first city: fresh heap
pages, and pages of the parent's freed heap memory that the worker writes to
(copied on write). Handing the inherited free memory back, and advising the
whole heap, grown by a large reserve, for transparent huge pages, makes most
of those faults one per 2 MiB instead of one per 4 KiB. In a 1,000-pair
generation from a process that had imported torch, as ``cvbench run`` has,
each worker's first city faulted about 2,500 pages instead of 24,000-30,000
(2026-12-06). Where the kernel gives no huge pages
(``/sys/kernel/mm/transparent_hugepage/enabled`` is ``never``), the advice
is ignored and only the reuse remains.

The memory stays with the process until it exits, so this is only for
worker processes that end with their cities, never for the caller's process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters of glibc's malloc.h
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20   # glibc's largest: smaller blocks come from the heap
TRIM_THRESHOLD = 1 << 30    # free memory kept at the heap's top before it is handed back
TOP_PAD = 64 << 20          # extra memory claimed each time the heap grows
HUGE_RESERVE = 512 << 20    # heap growth claimed at once and advised for huge pages (address space, not memory)
HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14          # Linux's madvise advice


def keep_freed_memory() -> bool:
    """Tune this process's glibc heap as above; False where the C library has no ``mallopt`` (not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    tuned = all(mallopt(parameter, value) == 1 for parameter, value in
                ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
    if tuned and sys.platform.startswith("linux"):
        _reserve_huge_heap(libc)
    return tuned


def _reserve_huge_heap(libc: ctypes.CDLL) -> None:
    """Hand back the heap memory inherited free, grow the heap by ``HUGE_RESERVE``, advise it all for huge pages.

    Free heap memory inherited from the parent would be copied a 4 KiB page
    at a time at the first write; handed back (``malloc_trim``), it is
    zero-filled at the first touch instead, a huge page where a whole aligned
    2 MiB of it is free. A block just under glibc's mmap threshold, allocated
    while the top pad is raised, makes the heap grow by the reserve (unless
    a free block that large is left); freed again, it stays in the heap (the
    trim threshold is higher) for the arrays to come.
    """
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.malloc_trim(0)
    libc.mallopt(M_TOP_PAD, HUGE_RESERVE)
    block = libc.malloc(MMAP_THRESHOLD - HUGE_PAGE)
    libc.mallopt(M_TOP_PAD, TOP_PAD)
    span = _heap_span()
    if span is not None:
        start = -(-span[0] // HUGE_PAGE) * HUGE_PAGE
        if span[1] > start:
            libc.madvise(start, span[1] - start, MADV_HUGEPAGE)  # refused where the kernel has no huge pages: harmless
    libc.free(block)


def _heap_span() -> tuple[int, int] | None:
    """The start and end address of this process's heap (glibc's main arena), from ``/proc/self/maps``."""
    try:
        with open("/proc/self/maps") as maps:
            spans = [[int(end, 16) for end in line.split(maxsplit=1)[0].split("-")]
                     for line in maps if line.rstrip().endswith("[heap]")]
    except OSError:
        return None
    return (min(start for start, _ in spans), max(end for _, end in spans)) if spans else None
