"""tune_malloc sets glibc's thresholds: after they were shrunk (as TensorFlow's generator pipeline
does), large buffers come from the heap again, with no page faults for each new tensor.

Measured in a fresh interpreter with transparent huge pages off for it (prctl), so that a fault is
one 4 KiB page whatever the rest of the test session has mapped."""

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import ctypes, json, resource
import numpy as np
from bertkit.allocator import M_MMAP_THRESHOLD, _mallopt, tune_malloc

ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
# The state TensorFlow's generator pipeline can leave: its M_TRIM_THRESHOLD freezes the mmap
# threshold wherever it stands (128 KiB here), and every larger buffer is a fresh mmap.
assert _mallopt()(M_MMAP_THRESHOLD, 128 * 1024)

def faults_per_alloc():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        buffer = np.ones(256 * 1024, np.float32)  # 1 MiB, written: every page touched
        del buffer
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20

shrunk = faults_per_alloc()
tuned_ok = tune_malloc()
faults_per_alloc()  # the first heap block comes from the kernel once
print(json.dumps({"shrunk": shrunk, "tuned": faults_per_alloc(), "ok": tuned_ok}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_large_buffers_are_reused_after_tune_malloc():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"]
    assert result["shrunk"] > 200, result  # 256 pages of 4 KiB, faulted anew for each buffer
    assert result["tuned"] < 10, result
