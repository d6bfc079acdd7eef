"""Pretraining step throughput: bertkit vs HF transformers BertForPreTraining (PyTorch) vs KerasHub.

One training step = forward + backward + AdamW update on a batch of seq-128 sequences with 20
masked positions each, random ids, vocab 30522. Reports sequences/s and model FLOP utilisation
(MFU) against this machine's matmul peak, measured here with TensorFlow (fp32 and bf16).

  bertkit:   Trainer-equivalent update step (XLA, the whole update in one program), fp32 and bf16;
             `bertkit-bf16-graph` / `bertkit-fp32-graph`: the same step in graph mode (`--no-xla`),
             where TensorFlow's bf16 matmuls run on oneDNN (AMX where the CPU has it).
  hf-torch:  BertForPreTraining, fp32 eager, bf16 autocast, and torch.compile (its best mode counts).
  kerashub:  BertBackbone + MaskedLMHead + NSP dense, Keras fit-style train step, jit_compile.

    .venv/bin/python benchmarks/pretrain_step.py [--configs tiny,mini,small,base] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import cpu_header, interleaved  # noqa: E402  (benchmarks/timing.py)

SEQ, PREDS, VOCAB = 128, 20, 30522


def batch(b: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, VOCAB, (b, SEQ)).astype(np.int32)
    positions = np.sort(np.stack([rng.choice(np.arange(1, SEQ - 1), PREDS, replace=False) for _ in range(b)]))
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids),
            "masked_lm_positions": positions.astype(np.int32),
            "masked_lm_ids": rng.integers(1000, VOCAB, (b, PREDS)).astype(np.int32),
            "masked_lm_weights": np.ones((b, PREDS), np.float32),
            "next_sentence_labels": rng.integers(0, 2, (b,)).astype(np.int32)}


def step_flops(config, b: int) -> float:
    """Matmul FLOPs of one training step (x3 the forward: forward + 2x backward)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = b * SEQ
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * b * SEQ * SEQ * h
    mlm = 2 * b * PREDS * (h * h + h * VOCAB)
    return 3 * (layers * per_layer + mlm)


def matmul_peak() -> dict:
    import tensorflow as tf

    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.random.normal([2048, 2048], dtype=tf.float32)
        a = tf.cast(a, dtype)
        f = tf.function(lambda x: tf.matmul(x, x))
        t = interleaved({"mm": lambda: f(a).numpy()}, 5)["mm"]
        out[dtype.name] = 2 * 2048 ** 3 / t
    return out


def bertkit_step(config, b: int, precision: str, xla: bool = True):
    import keras
    import tensorflow as tf

    from bertkit.model.models import build_task_model
    from bertkit.training.losses import PretrainingLoss
    from bertkit.training.optimizer import OptimizerConfig, create_optimizer, set_precision

    set_precision(precision)
    model = build_task_model("pretraining", config)
    optimizer = create_optimizer(OptimizerConfig(total_steps=1000))
    optimizer.build(model.trainable_variables)
    loss_fn = PretrainingLoss()
    data = {k: tf.constant(v) for k, v in batch(b).items()}
    feats = {k: data[k] for k in ("input_ids", "token_type_ids", "attention_mask", "masked_lm_positions")}
    labels = {k: data[k] for k in ("masked_lm_ids", "masked_lm_weights", "next_sentence_labels")}

    @tf.function(jit_compile=xla)
    def step():
        norms = {k: tf.cast(v, tf.float32) for k, v in loss_fn.normalizers(labels).items()}
        with tf.GradientTape() as tape:
            loss, _ = loss_fn(model(feats, training=True), labels, norms)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm([tf.convert_to_tensor(g) for g in grads], 1.0)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    keras.mixed_precision.set_global_policy("float32")
    return lambda: step().numpy()


def torch_step(config, b: int, mode: str):
    import torch
    import transformers

    hf = transformers.BertConfig(**config.to_dict())
    model = transformers.BertForPreTraining(hf).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    d = batch(b)
    labels = np.full((b, SEQ), -100, np.int64)
    np.put_along_axis(labels, d["masked_lm_positions"], d["masked_lm_ids"], axis=1)
    inputs = {k: torch.tensor(d[k], dtype=torch.long) for k in ("input_ids", "token_type_ids", "attention_mask")}
    inputs["labels"] = torch.tensor(labels)
    inputs["next_sentence_label"] = torch.tensor(d["next_sentence_labels"], dtype=torch.long)
    forward = torch.compile(model) if mode == "compile" else model

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = forward(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss.detach())
    return step


def kerashub_step(config, b: int):
    import keras
    import keras_hub
    import tensorflow as tf

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB, num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size,
        max_sequence_length=config.max_position_embeddings)
    mlm_head = keras_hub.layers.MaskedLMHead(vocabulary_size=VOCAB, token_embedding=backbone.token_embedding,
                                             activation="gelu")
    nsp = keras.layers.Dense(2)
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.01, global_clipnorm=1.0)
    d = {k: tf.constant(v) for k, v in batch(b).items()}
    inputs = {"token_ids": d["input_ids"], "segment_ids": d["token_type_ids"], "padding_mask": d["attention_mask"]}
    out = backbone(inputs)
    mlm_head(out["sequence_output"], mask_positions=d["masked_lm_positions"])
    nsp(out["pooled_output"])
    variables = backbone.trainable_variables + mlm_head.trainable_variables + nsp.trainable_variables
    optimizer.build(variables)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            out = backbone(inputs, training=True)
            logits = mlm_head(out["sequence_output"], mask_positions=d["masked_lm_positions"])
            loss = ce(d["masked_lm_ids"], logits) + ce(d["next_sentence_labels"], nsp(out["pooled_output"]))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss
    return lambda: step().numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="tiny,mini,small,base")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--peers", default="bertkit-fp32,bertkit-bf16,hf-fp32,hf-bf16,hf-compile,kerashub")
    args = p.parse_args()
    from bertkit.config import BertConfig

    print(f"cpu: {json.dumps(cpu_header())}")
    peak = matmul_peak()
    print(f"measured matmul peak: fp32 {peak['float32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s")
    print(f"{'config':7} {'peer':13} {'batch':>5} {'seq/s':>8} {'MFU':>6}")
    for name in args.configs.split(","):
        config = BertConfig.from_preset(name, vocab_size=VOCAB)
        b = 8 if name in ("base", "large") else 32
        fns = {}
        for peer in args.peers.split(","):
            if peer.startswith("bertkit"):
                fns[peer] = bertkit_step(config, b, "bf16" if "-bf16" in peer else "fp32",
                                         xla=not peer.endswith("-graph"))
            elif peer.startswith("hf"):
                fns[peer] = torch_step(config, b, peer.split("-")[1])
            else:
                fns[peer] = kerashub_step(config, b)
        load = {}
        seconds = interleaved(fns, args.steps, load=load)
        results = {}
        for peer, sec in seconds.items():
            mfu = step_flops(config, b) / sec / peak["bfloat16" if "bf16" in peer else "float32"]
            results[peer] = b / sec
            contended = load[peer]["contended_rounds"]
            print(f"{name:7} {peer:13} {b:5d} {b / sec:8.1f} {mfu:6.1%}"
                  + (f"  CONTENDED ({contended} rounds; others up to {load[peer]['others_share_max']:.0%})"
                     if contended else ""), flush=True)
        ours = max(v for k, v in results.items() if k.startswith("bertkit"))
        best_peer = max((v for k, v in results.items() if not k.startswith("bertkit")), default=None)
        if best_peer:
            print(f"{name:7} bertkit best / best peer: x{ours / best_peer:.2f}")


if __name__ == "__main__":
    main()
