"""Timing shared by the benchmark scripts (run them as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import os
import statistics
import time

FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_header() -> dict:
    """The CPU a measurement ran on: model name, family/model, the flags that decide the fast paths,
    the CPUs this process may use and the load average (Linux /proc)."""
    info = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {"cpu": info.get("model name"), "family": info.get("cpu family"), "model": info.get("model"),
            "flags": [f for f in FLAGS_OF_INTEREST if f in flags], "cpus": len(os.sched_getaffinity(0)),
            "load_average": os.getloadavg()}


def interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Median seconds per call of each fn, timing the peers in turn (one call each per round) so
    that a change in machine load hits all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(values) for name, values in times.items()}


def emit(result: dict, json_path: str | None) -> None:
    """Prints `result` as one JSON line and appends it to `json_path` when given."""
    import json

    print(json.dumps(result))
    if json_path:
        with open(json_path, "a") as f:
            f.write(json.dumps(result) + "\n")
