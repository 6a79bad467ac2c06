"""The C allocator's settings for a toyviz process (the command line, the page): keep freed memory for reuse.

A raster allocates and frees the same large arrays on every call: per chunk the layers' activations, per grid the
pattern words, ids and colours (megabytes at 256², four times as much at 512²). glibc's malloc serves a request
above its mmap threshold (128 KiB at start, raised up to 32 MiB as large blocks are freed) with fresh pages from
the kernel and returns them on free, and trims the heap's free top beyond twice that threshold: such arrays are
then paid again in page faults, one per 4 KiB touched, on every call, by a margin that depends on what the
process freed before. With both thresholds fixed high, freed memory is reused and those faults all but vanish
(`python -m toyviz bench choices` counts them a call, each way).

The cost is resident memory: up to TRIM_THRESHOLD of freed heap stays with the process instead of going back to
the system. Intel's PyTorch CPU guide recommends the same trade by swapping in jemalloc or tcmalloc.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3        # glibc's mallopt parameters (<malloc.h>)
MMAP_THRESHOLD = 64 << 20                          # requests below this come from the heap (a 2048² int64 id map
                                                   # is 32 MiB)
TRIM_THRESHOLD = 128 << 20                         # freed heap kept before the top is returned to the system
ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def reuse_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (mallopt) so that large arrays freed by one raster serve the next.
    Returns True when set; False, changing nothing, where the C library has no mallopt or ignores it (macOS,
    musl), or when the user chose either threshold through glibc's environment variables."""
    if any(name in os.environ for name in ENVIRONMENT):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):       # no such symbol, or no C library to load
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
