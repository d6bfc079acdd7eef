"""The peer of `bertkit predict` for a sequence classifier: HF transformers labels a file of texts.

Reads one text per line (blank lines keep their row, as in bertkit), tokenizes with the fast
tokenizer, sorts by length, runs batches of --batch-size under `torch.inference_mode` in the chosen
mode, and writes one JSON object per line ({"label", "probabilities"}) in input order, so the two
outputs can be compared line by line. Time it as a whole process, e.g.

    farm-bench -- python benchmarks/predict_hf.py --model clf texts.txt --out hf.jsonl
    farm-bench -- bertkit predict --model clf texts.txt --output bk.jsonl

--mode fp32 | bf16 (CPU autocast) | compile (torch.compile of the fp32 model) | onnx (ONNX Runtime
on the model exported by torch.onnx with dynamic batch and sequence axes, all graph optimisations,
one intra-op thread per CPU) | onnx-int8 (the same, after ONNX Runtime's dynamic int8 quantization,
`quantize_dynamic` with per-channel int8 weights: the peer of `bertkit predict --precision int8`).
--onnx FILE keeps the exported model (onnx-int8 keeps FILE and FILE.int8.onnx), so later runs skip
the export, as bertkit keeps its converted TFLite model.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a directory bertkit saved (HF layout)")
    p.add_argument("input")
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--mode", choices=["fp32", "bf16", "compile", "onnx", "onnx-int8"], default="fp32")
    p.add_argument("--onnx", help="onnx mode: the exported model's path (made if missing)")
    args = p.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with open(args.input, "rb") as f:
        lines = [raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8") for raw in f]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    if args.mode == "compile":
        model = torch.compile(model)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if args.mode in ("onnx", "onnx-int8"):
        model = onnx_runner(model, tokenizer, args.onnx, int8=args.mode == "onnx-int8")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    encoded = tokenizer([lines[i] for i in filled], truncation=True, max_length=args.max_length)["input_ids"]
    order = sorted(range(len(filled)), key=lambda j: len(encoded[j]))
    probs: dict[int, list[float]] = {}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.mode == "bf16")
    with torch.inference_mode(), autocast:
        for start in range(0, len(order), args.batch_size):
            batch = order[start: start + args.batch_size]
            padded = tokenizer.pad({"input_ids": [encoded[j] for j in batch]}, return_tensors="pt")
            logits = model(**padded).logits.float()  # [B, num_labels]
            for j, row in zip(batch, torch.softmax(logits, -1).tolist()):
                probs[filled[j]] = row
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(len(lines)):
            row = probs.get(i)
            record = ({"label": labels[max(range(len(row)), key=row.__getitem__)], "probabilities": row}
                      if row is not None else {"label": None, "probabilities": None})
            out.write(json.dumps(record) + "\n")


def onnx_runner(model, tokenizer, path: str | None, int8: bool = False):
    """A callable like the HF model (tensors in, `.logits` out) that runs ONNX Runtime (on the
    dynamically int8-quantized model with `int8`)."""
    import os
    import tempfile
    import types

    import onnxruntime as ort
    import torch

    path = path or os.path.join(tempfile.mkdtemp(), "model.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]  # the order of BertModel.forward's arguments
    if not os.path.exists(path):
        sample = tokenizer(["a sample text", "another one, longer than the first"], padding=True, return_tensors="pt")
        axes = {n: {0: "batch", 1: "sequence"} for n in names}
        torch.onnx.export(model, (), path, kwargs={n: sample[n] for n in names}, input_names=names,
                          output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}}, dynamo=False)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = path + ".int8.onnx"
        if not os.path.exists(quantized):
            quantize_dynamic(path, quantized, per_channel=True, weight_type=QuantType.QInt8)
        path = quantized
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(**inputs):
        inputs.setdefault("token_type_ids", torch.zeros_like(inputs["input_ids"]))  # pad() leaves them out
        logits = session.run(["logits"], {n: inputs[n].numpy() for n in names})[0]
        return types.SimpleNamespace(logits=torch.from_numpy(logits))

    return run


if __name__ == "__main__":
    main()
