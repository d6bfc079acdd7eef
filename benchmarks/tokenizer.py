"""Tokenizer throughput on Gutenberg lines: bertkit (in-graph and Python) vs HF vs tensorflow-text.

    .venv/bin/python benchmarks/tokenizer.py [--batch 10000] [--repeats 5] [--no-vocab]

Every engine gets the same batch of lines (non-empty lines of the Gutenberg books, in a fixed
shuffled order) and the uncased bert-base vocab; each is warmed up once (tracing, caches) and
the best of `--repeats` runs is reported. Tokens are word pieces without [CLS]/[SEP]/padding.
The Python path caches WordPiece results per word, so it is shown warm and cold.
Ratios are against HF `tokenizers` `encode_batch` (Rust, multi-threaded). Finally, the vocab
trainer is timed on the whole 10 MB Gutenberg set (target: under 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from timing import cpu_header  # noqa: E402  (benchmarks/timing.py)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
GUTENBERG = DATA / "pretrain" / "gutenberg"
VOCAB = DATA / "vocab" / "bert-base-uncased"


def gutenberg_lines(n: int, seed: int = 0) -> list[str]:
    lines = [ln for book in sorted(GUTENBERG.glob("*.txt"))
             for ln in book.read_bytes().decode("utf-8", errors="replace").splitlines() if ln.strip()]
    random.Random(seed).shuffle(lines)
    return lines[:n]


def best_time(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up: tf.function tracing, WordPiece caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def engines(lines: list[str]):
    """(name, run, count_tokens) for every engine; imports are inside so a missing one is skipped."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    sys.path.insert(0, str(REPO / "src"))
    from bertkit.tokenizer import load_tokenizer

    tok = load_tokenizer(VOCAB)
    batch = tf.constant(lines)
    graph = tok.in_graph(max_length=None, padding="longest")
    graph_fn = tf.function(graph, input_signature=[tf.TensorSpec([None], tf.string)])
    yield ("bertkit in-graph (ids+types+mask)", lambda: graph_fn(batch),
           lambda out: int(tf.reduce_sum(out["attention_mask"])) - 2 * len(lines))
    ids_fn = tf.function(lambda t: graph.tokenize(t)["ids"], input_signature=[tf.TensorSpec([None], tf.string)])
    yield "bertkit in-graph (ragged ids only)", lambda: ids_fn(batch), lambda out: int(out.flat_values.shape[0])
    yield ("bertkit Python encode_batch", lambda: tok.encode_batch(lines),
           lambda out: sum(len(e.ids) for e in out) - 2 * len(lines))

    def cold():
        tok.wordpiece._cache.clear()  # the per-word cache is normally warm after a few batches
        return tok.encode_batch(lines)

    yield "bertkit Python (cold word cache)", cold, lambda out: sum(len(e.ids) for e in out) - 2 * len(lines)

    from tokenizers.implementations import BertWordPieceTokenizer

    hf = BertWordPieceTokenizer(str(VOCAB / "vocab.txt"), lowercase=True)
    yield ("HF tokenizers encode_batch (Rust)", lambda: hf.encode_batch(lines),
           lambda out: sum(len(e.ids) for e in out) - 2 * len(lines))

    tft_bert = tf_text.BertTokenizer(str(VOCAB / "vocab.txt"), lower_case=True, token_out_type=tf.int64)
    tft_fn = tf.function(lambda t: tft_bert.tokenize(t).merge_dims(-2, -1))
    yield "tf-text BertTokenizer", lambda: tft_fn(batch), lambda out: int(out.flat_values.shape[0])

    fast_bert = tf_text.FastBertTokenizer(tok.inv_vocab, lower_case_nfd_strip_accents=True, token_out_type=tf.int64)
    fast_fn = tf.function(lambda t: fast_bert.tokenize(t))  # already [B, (T)]
    yield ("tf-text FastBertTokenizer (not exact)", lambda: fast_fn(batch),
           lambda out: int(out.flat_values.shape[0]))


def time_vocab_training() -> float:
    from bertkit.tokenizer.vocab import train_vocab

    start = time.perf_counter()
    train_vocab(sorted(GUTENBERG.glob("*.txt")), 30522, errors="replace", progress=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=10_000, help="lines per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-vocab", action="store_true", help="skip timing vocab training")
    args = parser.parse_args()
    if not GUTENBERG.exists():
        print(f"{GUTENBERG} not found", file=sys.stderr)
        return 1
    print(f"cpu: {json.dumps(cpu_header())}")
    lines = gutenberg_lines(args.batch)
    mb = sum(len(ln.encode("utf-8")) for ln in lines) / 1e6
    print(f"batch: {len(lines)} Gutenberg lines, {mb:.2f} MB; {os.cpu_count()} CPU cores; best of {args.repeats}")
    rows = []
    for name, run, count in engines(lines):
        seconds, out = best_time(run, args.repeats)
        rows.append((name, seconds, count(out)))
    hf_seconds = next(s for n, s, _ in rows if n.startswith("HF"))
    print()
    print(f"| {'engine':<38} | {'ms/batch':>9} | {'MB/s':>6} | {'k tokens/s':>10} | {'vs HF':>6} |")
    print(f"|{'-' * 40}|{'-' * 10}:|{'-' * 7}:|{'-' * 11}:|{'-' * 7}:|")
    for name, seconds, tokens in rows:
        print(f"| {name:<38} | {seconds * 1e3:>9.1f} | {mb / seconds:>6.2f} | {tokens / seconds / 1e3:>10.0f} "
              f"| {hf_seconds / seconds:>5.2f}x |")
    if not args.no_vocab:
        print(f"\nvocab training, 10 MB Gutenberg, 30522 tokens: {time_vocab_training():.1f} s (target < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
