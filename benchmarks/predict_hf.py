"""The peer of `bertkit predict` for a sequence classifier: HF transformers labels a file of texts.

Reads one text per line (blank lines keep their row, as in bertkit), tokenizes with the fast
tokenizer, sorts by length, runs batches of --batch-size under `torch.inference_mode` in the chosen
mode, and writes one JSON object per line ({"label", "probabilities"}) in input order, so the two
outputs can be compared line by line. Time it as a whole process, e.g.

    farm-bench -- python benchmarks/predict_hf.py --model clf texts.txt --out hf.jsonl
    farm-bench -- bertkit predict --model clf texts.txt --output bk.jsonl

--mode fp32 | bf16 (CPU autocast) | compile (torch.compile of the fp32 model).
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
    p.add_argument("--mode", choices=["fp32", "bf16", "compile"], default="fp32")
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
    filled = [i for i, line in enumerate(lines) if line.strip()]
    encoded = tokenizer([lines[i] for i in filled], truncation=True, max_length=args.max_length)["input_ids"]
    order = sorted(range(len(filled)), key=lambda j: len(encoded[j]))
    probs: dict[int, list[float]] = {}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.mode == "bf16")
    with torch.inference_mode(), autocast:
        for start in range(0, len(order), args.batch_size):
            batch = order[start: start + args.batch_size]
            padded = tokenizer.pad({"input_ids": [encoded[j] for j in batch]}, return_tensors="pt")
            logits = model(**padded).logits.float()
            for j, row in zip(batch, torch.softmax(logits, -1).tolist()):
                probs[filled[j]] = row
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(len(lines)):
            row = probs.get(i)
            record = ({"label": labels[max(range(len(row)), key=row.__getitem__)], "probabilities": row}
                      if row is not None else {"label": None, "probabilities": None})
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
