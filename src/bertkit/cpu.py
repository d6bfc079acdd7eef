"""What the CPU this process runs on can do, and the precision `auto` picks from it.

`--precision auto` (the default of `predict`, `embed`, `search` and `serve`; `evaluate` defaults to
fp32, the trained model's metrics) means:

  * the value of $BERTKIT_PRECISION ("fp32" or "int8"; "bf16" is for training) where it is set:
    a fleet or a test suite fixes one precision for every machine that way;
  * "int8" where the CPU has int8 dot-product units (AVX-512 VNNI, AVX-VNNI or AMX-INT8, the
    instructions XNNPACK's dynamic-range int8 kernels run on) and the model runs on TFLite;
  * "fp32" everywhere else, and always on the TensorFlow runtime.

Measured on 2 cores (docs/benchmarks.md): on an Intel Xeon with AMX and AVX-512 VNNI, int8 weights
ran MiniLM's forward pass 2.4-3.4x faster than float32 and `bertkit predict` on 4,000 AG News texts 3x
faster, labels equal to fp32's on 99.67% of AG News and 99.89% of SST-2 dev; on an AMD Zen 3 (AVX2,
no VNNI) int8 was no faster, so auto keeps float32 there. Outputs equal the float32 model's
(to ~1e-6) only with fp32: pass `--precision fp32` where they must not depend on the machine.

`finetune` and `pretrain` take `--precision auto` too (their default): bf16 mixed precision where
the CPU has AMX-BF16 units, else fp32 (`auto_training_precision`).
"""

from __future__ import annotations

import functools
import os

PRECISION_ENV = "BERTKIT_PRECISION"
# The int8 dot-product instructions, as /proc/cpuinfo names them.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# The bf16 matrix units TensorFlow's oneDNN matmuls use for Keras' mixed_bfloat16 policy.
BF16_MATMUL_FLAGS = ("amx_bf16",)
# What $BERTKIT_PRECISION may fix for training (fp16 only by request: it needs loss scaling).
TRAINING_PRECISIONS = ("fp32", "bf16")
ENV_PRECISIONS = ("fp32", "int8", "bf16")
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


def has_bf16_matrix_units() -> bool:
    """True where the CPU has bf16 matrix units (AMX-BF16), on which TensorFlow's oneDNN matmuls
    run Keras' `mixed_bfloat16` policy."""
    return bool(cpu_flags() & set(BF16_MATMUL_FLAGS))


def auto_training_precision() -> str:
    """What `--precision auto` resolves to for `finetune` and `pretrain` on this CPU.

    $BERTKIT_PRECISION where it names a training precision ("fp32", "bf16"; not "int8", which is
    for inference), else "bf16" where the CPU has AMX-BF16 units, else "fp32".
    Measured on 2 cores (docs/benchmarks.md, "Training precision"): on an Intel Xeon with AMX, bf16
    fine-tuning epochs ran 1.3x faster than fp32 ones with scores inside HF's fp32 seed range; on
    CPUs with AVX-512 bf16 instructions but no AMX (AMD Zen 4, Zen 5) bf16 training was not measured
    faster, so auto keeps fp32 there. GPUs are not covered by this rule: the caller keeps fp32 on them.

    Raises ValueError if $BERTKIT_PRECISION says something no command takes (`env_precision`)."""
    chosen = env_precision()
    if chosen in TRAINING_PRECISIONS:
        return chosen
    return "bf16" if has_bf16_matrix_units() else "fp32"


def auto_precision() -> str:
    """What precision "auto" resolves to on a TFLite runtime here (see the module docstring).

    Raises ValueError if $BERTKIT_PRECISION says something no command takes (`env_precision`)."""
    from .tasks.lite import PRECISIONS

    chosen = env_precision()
    if chosen in PRECISIONS:
        return chosen
    return "int8" if has_int8_dot() else "fp32"


def env_precision() -> str | None:
    """$BERTKIT_PRECISION, or None where it is unset. Each command takes the value where it is one
    of its precisions (int8 only for inference, bf16 only for training) and otherwise decides as
    if it were unset.

    Raises ValueError for a value that no command takes."""
    chosen = os.environ.get(PRECISION_ENV) or None
    if chosen is not None and chosen not in ENV_PRECISIONS:
        raise ValueError(f"${PRECISION_ENV} must be one of {', '.join(ENV_PRECISIONS)}, got {chosen!r}")
    return chosen
