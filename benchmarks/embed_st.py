"""The reference for `bertkit embed`: sentence-transformers' `encode` on a file of texts, one per line
(batch 32, fp32 on the CPU, or bf16 under CPU autocast with --precision bf16; its own length
sorting), saved as float32 .npy.

  python benchmarks/embed_st.py --model MINILM texts.txt --output st.npy --threads 2 [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from timing import cpu_header  # benchmarks/timing.py (no bertkit import)


def main(argv=None):
    from sentence_transformers import SentenceTransformer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("input")
    p.add_argument("--output", required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = SentenceTransformer(args.model, device="cpu")
    with open(args.input, encoding="utf-8", newline="") as f:
        texts = f.read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        vectors = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
    np.save(args.output, vectors.astype(np.float32))
    print(json.dumps({**cpu_header(), "tool": "sentence-transformers", "texts": len(texts),
                      "precision": args.precision,
                      "seconds": round(time.perf_counter() - start, 2)}))


if __name__ == "__main__":
    main()
