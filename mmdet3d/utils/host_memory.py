"""Keep freed host memory for reuse: glibc malloc thresholds for CPU training and testing.

By default glibc serves every allocation above its mmap threshold (128 KiB, raised as blocks are
freed, up to 32 MiB) with a fresh ``mmap`` and returns it to the kernel on ``free``; the heap top is
trimmed above 128 KiB. A CPU training iteration of the tiny config allocates and frees hundreds of
such tensors (the voxel volumes and the decoders' activations are tens of MiB each), so every
iteration page-faults them in again and the kernel zero-fills every page: measured on the quickstart
config (batch 2, one thread, the 2-core machine shared with two training runs), ~630 k minor page
faults and ~1 s of system time per iteration. With both thresholds at 1 GiB freed blocks stay in the
heap and are reused: 2 faults per iteration, 1.32x faster iterations, peak resident memory +16 %
(``tools/benchmarks/bench_host_memory.py``). Allocation only: the arithmetic is unchanged.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

#: glibc ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the thresholds set by :func:`keep_freed_host_memory` (mallopt takes a C int)
DEFAULT_THRESHOLD = 1 << 30
#: environment variables that leave the allocator alone: glibc's own (the user chose), or ours
GLIBC_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')
OPT_OUT_VARIABLE = 'MMDET3D_KEEP_HOST_MEMORY'


def keep_freed_host_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes for this process (and the
    data-loader workers it forks later).

    Does nothing where the C library is not glibc, where the user set glibc's
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, or with
    ``MMDET3D_KEEP_HOST_MEMORY=0``.

    Args:
        threshold: bytes, 1 to 2**31 - 1. Defaults to 1 GiB.

    Returns:
        True where both thresholds were set.
    """
    if not 0 < threshold < 2**31:
        raise ValueError(f'threshold must lie in [1, 2**31 - 1] bytes, got {threshold}')
    if os.environ.get(OPT_OUT_VARIABLE, '1') == '0':
        return False
    if any(name in os.environ for name in GLIBC_VARIABLES):
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                      threshold))


def _glibc_mallopt():
    """glibc's ``mallopt(int, int) -> int``, or None on another C library."""
    name = ctypes.util.find_library('c')
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has it  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


__all__ = ['keep_freed_host_memory']
