"""What int8 weights change in sentence embeddings: STS-B Spearman and cosine to fp32.

Embeds both sides of every pair of an STS-B file (`stsb/sts-dev.csv`: TAB-separated, score in
column 5, texts in 6 and 7) with `bertkit.Embedder` in fp32 and in int8 (TFLite dynamic-range
weights, `--precision int8`), and prints per precision the Spearman correlation (scipy) of the
cosine similarities with the gold scores, then the cosine between each text's two embeddings.

    python benchmarks/int8_embed.py --model MINILM_DIR --data ../shared/data/stsb/sts-dev.csv
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import spearmanr

from bertkit.embeddings import Embedder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a sentence-transformers folder or any bertkit model")
    p.add_argument("--data", required=True, help="an STS-B file (sts-dev.csv)")
    args = p.parse_args()
    with open(args.data, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    first, second, gold = [r[5] for r in rows], [r[6] for r in rows], [float(r[4]) for r in rows]
    embedded = {}
    for precision in ("fp32", "int8"):
        embedder = Embedder(args.model, precision=precision)
        a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (embedder.encode(first), embedder.encode(second)))
        embedded[precision] = np.concatenate([a, b])
        print(f"{precision}: {len(rows)} pairs, Spearman {spearmanr((a * b).sum(1), gold).statistic:.4f}")
    same = (embedded["fp32"] * embedded["int8"]).sum(1)
    print(f"cosine int8 vs fp32: min {same.min():.4f}, median {np.median(same):.4f}")


if __name__ == "__main__":
    main()
