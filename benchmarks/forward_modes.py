"""A fine-tuned classifier's forward pass at fixed shapes, in every mode bertkit and PyTorch offer.

    python benchmarks/forward_modes.py --model clf tflite      # after `bertkit predict --model clf ...`
    python benchmarks/forward_modes.py --model clf int8        # ... --precision int8 (fills the cache)
    python benchmarks/forward_modes.py --model clf tf | tf-bf16 | torch | torch-bf16

One mode per process (a Keras dtype policy is global): tflite / int8 run the converted model from
bertkit's cache through LiteRT, as `bertkit predict` does; tf runs the Keras model as one traced
graph (`--runtime tensorflow`); tf-bf16 builds it under Keras' `mixed_bfloat16` policy; torch runs
HF transformers in `inference_mode`, torch-bf16 under CPU autocast to bfloat16. Prints one JSON
line per shape: median milliseconds of >= 5 calls (and >= 4 s) after two warm-ups, and the share
of the CPUs other processes used meanwhile (`others_share`; above 0.1 the timing is contended).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import Region, cpu_header  # noqa: E402  (benchmarks/timing.py)

MODES = ("tflite", "int8", "tf", "tf-bf16", "torch", "torch-bf16")


def lite_forward(model_dir: str, precision: str):
    from bertkit.tasks import TASKS
    from bertkit.tasks.inference import load_for_inference

    return load_for_inference(model_dir, TASKS, runtime="tflite", precision=precision).forward


def tf_forward(model_dir: str, bf16: bool):
    if bf16:
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from bertkit.pretrained import load_model
    from bertkit.tasks.inference import graph_forward

    return graph_forward(load_model(model_dir))


def torch_forward(model_dir: str, bf16: bool):
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()

    def forward(inputs):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(**{k: torch.from_numpy(v).long() for k, v in inputs.items()}).logits.float().numpy()

    return forward


def median_ms(fn) -> tuple[float, float]:
    """Median milliseconds per call, and the share of the CPUs other processes used meanwhile."""
    fn()
    fn()
    times, start = [], time.perf_counter()
    with Region() as region:
        while len(times) < 5 or time.perf_counter() - start < 4:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000, region.others_share


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=MODES)
    p.add_argument("--model", required=True, help="a directory `bertkit finetune classify` wrote")
    p.add_argument("--shapes", default="32x48,32x128,1x48", help="batch x sequence, comma-separated")
    args = p.parse_args(argv)
    forward = {"tflite": lambda: lite_forward(args.model, "fp32"), "int8": lambda: lite_forward(args.model, "int8"),
               "tf": lambda: tf_forward(args.model, False), "tf-bf16": lambda: tf_forward(args.model, True),
               "torch": lambda: torch_forward(args.model, False),
               "torch-bf16": lambda: torch_forward(args.model, True)}[args.mode]()
    rng, header = np.random.default_rng(0), cpu_header()
    for shape in args.shapes.split(","):
        batch, seq = (int(x) for x in shape.split("x"))
        inputs = {"input_ids": rng.integers(1000, 20000, (batch, seq)).astype(np.int32),
                  "token_type_ids": np.zeros((batch, seq), np.int32), "attention_mask": np.ones((batch, seq), np.int32)}
        ms, others = median_ms(lambda: forward(inputs))
        print(json.dumps({**header, "mode": args.mode, "batch": batch, "seq": seq, "ms": round(ms, 2),
                          "sequences_per_s": round(batch / ms * 1000, 1), "others_share": round(others, 3)}),
              flush=True)


if __name__ == "__main__":
    main()
