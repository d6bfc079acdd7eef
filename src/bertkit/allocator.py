"""Keeps glibc's malloc from returning tensor buffers to the kernel after every op.

TensorFlow's CPU tensors come from malloc. When a `tf.data.Dataset.from_generator` pipeline starts,
TensorFlow sets glibc's M_TRIM_THRESHOLD to 128 KiB ("Memory patch applied" in its log); setting
any such parameter also freezes glibc's mmap threshold, which otherwise grows to fit the program's
large blocks. From then on every buffer over 128 KiB (a MiniLM activation of 32 x 64 x 1536 floats
is 12 MiB) is a fresh mmap, faulted in page by page and unmapped when freed: on 2 CPU cores,
fine-tuning MiniLM spent a third of its time in the kernel (30 steps: 55 s system time of 103 s
wall; 12 s of 78 s after `tune_malloc`, docs/benchmarks.md).

`tune_malloc` sets both thresholds back to generous values: blocks up to 32 MiB (glibc's maximum
mmap threshold on 64-bit) come from the heap and are reused, and up to 512 MiB of free memory stays
in the process. It does nothing where glibc is not the C library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return None


def tune_malloc() -> bool:
    """Sets glibc's mmap and trim thresholds (see the module docstring); True if it could.

    Call it after TensorFlow has started a generator pipeline (it may set the trim threshold again
    each time one starts); calling it again is cheap."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                   TRIM_THRESHOLD_BYTES))
