"""What the CPU this process runs on can do, and the inference precision `auto` picks from it.

`--precision auto` (the default of `predict`, `embed`, `search` and `serve`; `evaluate` defaults to
fp32, the trained model's metrics) means:

  * the value of $BERTKIT_PRECISION ("fp32" or "int8") where it is set: a fleet or a test suite
    fixes one precision for every machine that way;
  * "int8" where the CPU has int8 dot-product units (AVX-512 VNNI, AVX-VNNI or AMX-INT8, the
    instructions XNNPACK's dynamic-range int8 kernels run on) and the model runs on TFLite;
  * "fp32" everywhere else, and always on the TensorFlow runtime.

Measured on 2 cores (docs/benchmarks.md): on an Intel Xeon with AMX and AVX-512 VNNI, int8 weights
ran MiniLM's forward pass 2.4-3.4x faster than float32 and `bertkit predict` on 4,000 AG News texts 3x
faster, labels equal to fp32's on 99.67% of AG News and 99.89% of SST-2 dev; on an AMD Zen 3 (AVX2,
no VNNI) int8 was no faster, so auto keeps float32 there. Outputs equal the float32 model's
(to ~1e-6) only with fp32: pass `--precision fp32` where they must not depend on the machine.
"""

from __future__ import annotations

import functools
import os

PRECISION_ENV = "BERTKIT_PRECISION"
# The int8 dot-product instructions, as /proc/cpuinfo names them.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# Flags that decide bertkit's or a peer's fast paths; benchmarks report them with each number.
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8",
                     "avx512_vnni", "avx_vnni")


@functools.lru_cache(maxsize=4)
def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ("model name", "flags", ...); empty where
    there is no such file (macOS, Windows)."""
    info: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough: all cores of a machine report the same
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux names them (e.g. "avx512_vnni"); empty if unknown."""
    return frozenset(cpu_info().get("flags", "").split())


def has_int8_dot() -> bool:
    """True where the CPU has an int8 dot-product instruction (INT8_DOT_FLAGS)."""
    return bool(cpu_flags() & set(INT8_DOT_FLAGS))


def auto_precision() -> str:
    """What precision "auto" resolves to on a TFLite runtime here (see the module docstring).

    Raises ValueError if $BERTKIT_PRECISION is set to anything but "fp32" or "int8"."""
    from .tasks.lite import PRECISIONS

    chosen = os.environ.get(PRECISION_ENV)
    if chosen:
        if chosen not in PRECISIONS:
            raise ValueError(f"${PRECISION_ENV} must be one of {', '.join(PRECISIONS)}, got {chosen!r}")
        return chosen
    return "int8" if has_int8_dot() else "fp32"
