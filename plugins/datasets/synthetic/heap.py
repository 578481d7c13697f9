"""The C heap of a generator worker process: keep freed memory for reuse, and back it with huge pages.

Building a city allocates and frees hundreds of arrays of a few megabytes.
By default glibc maps each from the system and unmaps it when freed, so the
kernel zero-fills fresh pages at the next array's first touch. Raising
glibc's thresholds lets freed arrays be reused: on the 2-core development
machine a worker then used about 11% less CPU per city, with half the page
faults (2026-12-06).

A forked worker still faults in each page of its first city: fresh heap
pages, and pages of the parent's freed heap memory that the worker writes to
(copied on write). Reserving the heap's growth in one piece advised for
transparent huge pages makes most of those faults one per 2 MiB instead of
one per 4 KiB: 24,000 and 40,000 faults became 2,300 and 11,700 in the two
workers of a 1,000-pair generation (2026-12-06; the time saved is within
the development machine's drift: docs/performance.md); forked from a process
that had imported torch, as in ``cvbench run``, a worker's first city
faulted 2,900 pages instead of 24,700. Where the parent's heap already
holds a free block as large as the one that makes the heap grow, it does
not grow and nothing changes; where the kernel gives no huge pages
(``/sys/kernel/mm/transparent_hugepage/enabled`` is ``never``), the advice
is ignored. Either way the reuse remains.

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
    """Grow the heap by ``HUGE_RESERVE`` at once and advise that range for transparent huge pages.

    A block just under glibc's mmap threshold, allocated while the top pad is
    raised, makes the heap grow by the reserve; freed again, it stays in the
    heap (the trim threshold is higher) for the arrays to come. The advice
    covers the whole 2 MiB pages from that block to the heap's new end.
    """
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.mallopt(M_TOP_PAD, HUGE_RESERVE)
    block = libc.malloc(MMAP_THRESHOLD - HUGE_PAGE)
    end = libc.sbrk(0)
    libc.mallopt(M_TOP_PAD, TOP_PAD)
    if block:
        start = -(-block // HUGE_PAGE) * HUGE_PAGE
        if end and end > start:
            libc.madvise(start, end - start, MADV_HUGEPAGE)  # refused where the kernel has no huge pages: harmless
        libc.free(block)
