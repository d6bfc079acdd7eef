"""Timing shared by the benchmark scripts (run them as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import importlib.util
import os
import statistics
import time


def _load_cpu_module():
    """bertkit/cpu.py as a module of its own: the peers' scripts (embed_st.py, finetune_hf.py, ...)
    time whole processes that must not import the bertkit package (0.2 s of imports)."""
    package = importlib.util.find_spec("bertkit")  # locates the package without importing it
    path = os.path.join(os.path.dirname(package.origin), "cpu.py")
    spec = importlib.util.spec_from_file_location("bertkit_cpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cpu = _load_cpu_module()
FLAGS_OF_INTEREST, cpu_flags, cpu_info = _cpu.FLAGS_OF_INTEREST, _cpu.cpu_flags, _cpu.cpu_info


def cpu_header() -> dict:
    """The CPU a measurement ran on: model name, family/model, the flags that decide the fast paths,
    the CPUs this process may use and the load average (Linux /proc)."""
    info, flags = cpu_info(), cpu_flags()
    return {"cpu": info.get("model name"), "family": info.get("cpu family"), "model": info.get("model"),
            "flags": [f for f in FLAGS_OF_INTEREST if f in flags], "cpus": len(os.sched_getaffinity(0)),
            "load_average": os.getloadavg()}


def _busy_cpu_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (/proc/stat: user, nice, system, irq,
    softirq, steal); 0 where /proc is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Region:
    """A timed region: wall seconds, and the CPU seconds OTHER processes used meanwhile (the
    machine's busy time minus this process's and its children's), to tell a clean timing from a
    contended one. `others_share`: their CPU seconds per wall second per core (0.1 = 10%)."""

    def __enter__(self):
        self._wall, self._busy, self._own = time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._wall
        own = _own_cpu_seconds() - self._own
        self.others_cpu_seconds = max(0.0, _busy_cpu_seconds() - self._busy - own)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.others_share = self.others_cpu_seconds / max(self.seconds * cores, 1e-9)
        return False


CONTENDED_SHARE = 0.10  # a region where other processes used more than 10% of the CPUs is not clean


MIN_SAMPLE_SECONDS = 0.5  # a timed sample repeats a short call until it lasts this long


def interleaved(fns: dict, repeats: int, warmup: int = 2, load: dict | None = None) -> dict:
    """Median seconds per call of each fn, timing the peers in turn (one sample each per round) so
    that a change in machine load hits all of them alike. A sample of a call shorter than
    MIN_SAMPLE_SECONDS repeats it (as timeit does), so that the time and the load reading (which
    /proc/stat counts in 10 ms ticks) are not dominated by the clock's granularity.
    With `load` (a dict), fills load[name] = {"others_share_max": ..., "contended_rounds": ...}
    from each sample's `Region`: report contended measurements as such, or repeat them; never as
    results."""
    number = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        fn()
        number[name] = max(1, int(MIN_SAMPLE_SECONDS / max(time.perf_counter() - start, 1e-6)))
    times = {name: [] for name in fns}
    shares = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with Region() as region:
                for _ in range(number[name]):
                    fn()
            times[name].append(region.seconds / number[name])
            shares[name].append(region.others_share)
    if load is not None:
        for name, values in shares.items():
            load[name] = {"others_share_max": round(max(values), 3),
                          "contended_rounds": sum(v > CONTENDED_SHARE for v in values)}
    return {name: statistics.median(values) for name, values in times.items()}


def emit(result: dict, json_path: str | None) -> None:
    """Prints `result` as one JSON line and appends it to `json_path` when given."""
    import json

    print(json.dumps(result))
    if json_path:
        with open(json_path, "a") as f:
            f.write(json.dumps(result) + "\n")
