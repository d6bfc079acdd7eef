"""The hardware ceiling: sustained large matmuls per framework and dtype, in GFLOP/s.

    python benchmarks/gemm.py            # TensorFlow and PyTorch, fp32 and bf16, two shapes
    python benchmarks/gemm.py --threads 1 --frameworks torch,tensorflow   # one core; another order

Each (framework, dtype, shape) runs back to back for --seconds after two warm-up calls; prints one
JSON line per measurement with the CPU header. The shapes: a square 2048^3 and BERT's feed-forward
matmul at 32 x 128 tokens of BERT-base's hidden size (4096 x 384 x 1536 for MiniLM's widths).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from timing import cpu_header  # noqa: E402  (benchmarks/timing.py)

SHAPES = ((2048, 2048, 2048), (4096, 384, 1536))


def rate(fn, flops: float, seconds: float) -> float:
    fn()
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return flops * calls / (time.perf_counter() - start) / 1e9


def tensorflow_rates(seconds: float, threads: int | None):
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    for m, k, n in SHAPES:
        for dtype in (tf.float32, tf.bfloat16):
            a = tf.cast(tf.random.normal([m, k]), dtype)
            b = tf.cast(tf.random.normal([k, n]), dtype)
            yield "tensorflow", dtype.name, (m, k, n), rate(lambda: tf.matmul(a, b).numpy(), 2 * m * k * n, seconds)


def torch_rates(seconds: float, threads: int | None):
    import torch

    if threads:
        torch.set_num_threads(threads)

    for m, k, n in SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            yield "torch", str(dtype).removeprefix("torch."), (m, k, n), rate(lambda: torch.mm(a, b), 2 * m * k * n,
                                                                             seconds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frameworks", default="tensorflow,torch")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=None, help="compute threads (default: each framework's own)")
    args = p.parse_args(argv)
    header = cpu_header()
    for name in args.frameworks.split(","):
        rates = {"tensorflow": tensorflow_rates, "torch": torch_rates}[name](args.seconds, args.threads)
        for framework, dtype, shape, gflops in rates:
            print(json.dumps({**header, "framework": framework, "dtype": dtype, "shape": shape,
                              "threads": args.threads, "gflop_per_s": round(gflops)}), flush=True)


if __name__ == "__main__":
    main()
