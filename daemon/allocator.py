"""The process's allocator: freed image-sized blocks stay in it between a job's stages.

A job allocates and frees dozens of image-sized arrays (8–25 MB each at 2 MP), and the
depth model's forward pass allocates its activations afresh. By default glibc hands every
block over its (adaptive) mmap threshold straight back to the kernel when it is freed and
trims the heap's top, so the next array of that size page-faults and is zeroed by the
kernel all over again; and it gives each thread an arena of its own, whose heaps are at
most 64 MiB, so image-sized blocks made on the pipeline's worker threads are mapped and
returned again and again.

These settings are the whole process's (torch's allocations included), so only the
process entry points make them: :func:`daemon.cli.main` for every ``strata`` command and
:func:`daemon.worker_child.serve` for the daemon's pipeline process, before any thread
allocates. :func:`keep_freed_memory` raises both thresholds, so blocks up to the largest
heap block glibc allows (32 MiB) are recycled inside the process (larger ones, 12 MP
planes, are still mapped and unmapped), and keeps every thread on the one main heap. The
resident size then stays at its high-water mark while jobs run;
:func:`release_freed_memory` hands the unused part back, and a long-lived worker calls it
once it has been idle a while.

Both are no-ops where the C library is not glibc (macOS's allocator keeps its own caches
and has no such knobs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""glibc's upper limit for the mmap threshold on 64-bit systems."""
TRIM_THRESHOLD_BYTES = 2**31 - 1
"""The largest value ``mallopt`` takes: the heap's top is never trimmed on free;
:func:`release_freed_memory` does it on purpose."""


@cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None  # musl and others: leave their allocator alone
    return libc


def keep_freed_memory() -> bool:
    """Recycle freed image-sized blocks inside the process, on one heap for every thread.
    True if the allocator took it. Call it at process start, before threads allocate."""
    libc = _glibc()
    if libc is None:
        return False
    mmap_ok = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD_BYTES))
    trim_ok = libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(TRIM_THRESHOLD_BYTES))
    arena_ok = libc.mallopt(_M_ARENA_MAX, ctypes.c_int(1))
    return bool(mmap_ok and trim_ok and arena_ok)


def release_freed_memory() -> None:
    """Give the memory freed since the last job back to the operating system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(ctypes.c_size_t(0))
