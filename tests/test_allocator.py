"""tune_malloc sets glibc's thresholds: after they were shrunk (as TensorFlow's generator pipeline
does), large buffers come from the heap again (no page faults for each new tensor)."""

import resource
import sys

import numpy as np
import pytest

from bertkit.allocator import tune_malloc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_large_buffers_are_reused_after_tune_malloc():
    # The state TensorFlow's generator pipeline can leave (its M_TRIM_THRESHOLD freezes the mmap
    # threshold wherever it stands; 128 KiB here): every larger buffer is a fresh mmap.
    from bertkit.allocator import M_MMAP_THRESHOLD, _mallopt

    assert _mallopt()(M_MMAP_THRESHOLD, 128 * 1024)

    def faults_per_alloc():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            buffer = np.ones(256 * 1024, np.float32)  # 1 MiB, written: every page touched
            del buffer
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20

    shrunk = faults_per_alloc()
    assert tune_malloc()
    faults_per_alloc()  # the first block comes from the kernel once
    tuned = faults_per_alloc()
    assert shrunk > 100  # 256 pages of 4 KiB, faulted anew each time
    assert tuned < shrunk / 20, (shrunk, tuned)
