"""The reference for `bertkit finetune embedding`: the same training in sentence-transformers.

sentence-transformers' model and loss (CoSENTLoss on scored pairs, MultipleNegativesRankingLoss on
unscored ones, scale 20) in the loop its Trainer runs, with bertkit's recipe: AdamW (weight decay
0.01 except LayerNorm weights and biases, eps 1e-6), linear warmup over --warmup-ratio of the
steps then linear decay to 0, global-norm clipping 1.0, random batches of --batch-size without the
last partial one, dropout on. Reports the dev Spearman correlation of cosine similarity with the
scores (EmbeddingSimilarityEvaluator's spearman_cosine) before and after training. STS-B files
are read as bertkit reads them with `--delimiter tab --no-header --text-column 5
--text-pair-column 6 --label-column 4`.

  python benchmarks/finetune_st.py --model MINILM --train stsb/sts-train.csv --dev stsb/sts-dev.csv \
      --epochs 1 --batch-size 16 --learning-rate 2e-5 --seed 1 --threads 2 --json st.jsonl
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from timing import cpu_header, emit  # benchmarks/timing.py (no bertkit import)


def read_stsb(path):
    """(sentence 1, sentence 2, score) per line: TAB-separated, no quoting, 7 or 9 fields."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 7:
                rows.append((fields[5], fields[6], float(fields[4])))
    return rows


def dev_spearman(model, rows) -> float:
    from scipy import stats

    a = model.encode([r[0] for r in rows], batch_size=64, normalize_embeddings=True)
    b = model.encode([r[1] for r in rows], batch_size=64, normalize_embeddings=True)
    return float(stats.spearmanr([r[2] for r in rows], np.sum(a * b, axis=1)).statistic)


def main(argv=None):
    from sentence_transformers import SentenceTransformer, losses
    from transformers import get_linear_schedule_with_warmup

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--loss", choices=["cosent", "mnrl"], default="cosent")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--json", help="append the result as a JSON line to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SentenceTransformer(args.model, device="cpu")
    train, dev = read_stsb(args.train), read_stsb(args.dev)
    before = dev_spearman(model, dev)
    loss = losses.CoSENTLoss(model) if args.loss == "cosent" else losses.MultipleNegativesRankingLoss(model)
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.learning_rate, eps=1e-6)
    steps_per_epoch = len(train) // args.batch_size
    steps = steps_per_epoch * args.epochs
    schedule = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * steps), steps)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        for s in range(steps_per_epoch):
            batch = [train[i] for i in order[s * args.batch_size:(s + 1) * args.batch_size]]
            features = [model.tokenize([r[k] for r in batch]) for k in (0, 1)]
            labels = torch.tensor([r[2] for r in batch]) if args.loss == "cosent" else None
            value = loss(features, labels)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            if not math.isfinite(float(value)):
                raise RuntimeError(f"loss became {float(value)}")
    seconds = time.perf_counter() - start
    model.eval()
    result = {**cpu_header(), "tool": "sentence-transformers", "loss": args.loss, "seed": args.seed, "steps": steps,
              "train_seconds": round(seconds, 2), "dev_spearman_before": before, "dev_spearman": dev_spearman(model, dev)}
    emit(result, args.json)


if __name__ == "__main__":
    main()
