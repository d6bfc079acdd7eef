"""`bertkit pretrain-data`: raw text -> NSP + masked-LM TFRecord shards for `bertkit pretrain`."""

from __future__ import annotations

import argparse

from .options import add_dataclass_flags, add_progress_flag, deprecated_alias, show_progress

# Flags made from PretrainingDataConfig's fields (their defaults are declared there, once).
DATA_HELP = {
    "max_length": "word pieces per sequence, [CLS] and [SEP]s included",
    "max_predictions": "max masked tokens per sequence",
    "masked_lm_prob": "share of a sequence's word pieces that are masked",
    "short_seq_prob": "share of instances made shorter than --max-length, so the model also sees short inputs",
    "whole_word_mask": "mask all pieces of a word together",
    "pool_tokens": "documents are processed in pools of about this many word pieces (memory bound); "
                   "NotNext segments come from the same pool",
}


def add_format_flag(p) -> None:
    """--format, shared by `pretrain-data` and `pretrain` (both read raw corpora)."""
    p.add_argument("--format", choices=("auto", "lines", "prose"), default="auto", dest="input_format",
                   help="lines: one sentence per line, blank line between documents; prose: running text, "
                        "one document per file; auto: decide per file (default)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain-data",
        help="build pretraining TFRecords (NSP pairs + masked LM) from raw text",
        description="Turn raw text into TFRecord shards of [CLS] A [SEP] B [SEP] instances with "
                    "next-sentence labels and masked-LM targets (google-research create_pretraining_data "
                    "semantics), plus vocab.txt and pretraining_data.json in OUT.",
    )
    p.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                   help="text files (plain or gzip, UTF-8): one sentence per line with blank lines between "
                        "documents, or running prose (one document per file); a folder means every file in it")
    p.add_argument("--vocab", required=True, help="vocab.txt or a directory holding one")
    p.add_argument("--out", required=True, help="output directory")
    from ..data.pretraining import PretrainingDataConfig

    add_dataclass_flags(p, PretrainingDataConfig, DATA_HELP)
    deprecated_alias(p, "--seq-len", "--max-length", "max_length", type=int)
    p.add_argument("--dupe-factor", type=int, default=None,
                   help="passes over the corpus, each with new pairs and masks "
                        "(default 5 with static masks, 1 with --dynamic-mask)")
    p.add_argument("--shards", type=int, default=8, help="number of output TFRecord files (8)")
    p.add_argument("--dynamic-mask", action="store_true",
                   help="write unmasked records; masks are drawn anew every epoch in tf.data")
    p.add_argument("--seed", type=int, default=12345, help="seed of the pairs and masks (default 12345)")
    p.add_argument("--errors", choices=("strict", "replace"), default="strict",
                   help="undecodable bytes: fail naming file and line (strict), or use U+FFFD (replace)")
    add_format_flag(p)
    add_progress_flag(p)
    deprecated_alias(p, "--quiet", "--no-progress", "progress", const=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.corpus import expand_corpus
    from ..data.pretraining import PretrainingDataConfig
    from ..data.records import METADATA_FILE, write_pretraining_data
    from ..tokenizer import load_tokenizer

    dupe_factor = args.dupe_factor if args.dupe_factor is not None else (1 if args.dynamic_mask else 5)
    # Options are validated before the vocabulary or the corpus is read.
    config = PretrainingDataConfig(
        max_length=args.max_length, max_predictions=args.max_predictions,
        masked_lm_prob=args.masked_lm_prob, short_seq_prob=args.short_seq_prob, dupe_factor=dupe_factor,
        whole_word_mask=args.whole_word_mask, static_mask=not args.dynamic_mask, pool_tokens=args.pool_tokens)
    tokenizer = load_tokenizer(args.vocab)
    metadata = write_pretraining_data(
        expand_corpus(args.corpus), tokenizer, args.out, config, num_shards=args.shards, seed=args.seed,
        fmt=args.input_format, errors=args.errors, progress=show_progress(args))
    n = metadata["num_instances"]
    counts = metadata["counts"]
    print(f"{n} instances ({metadata['masking']} masking, IsNext {counts['is_next'] / max(n, 1):.1%}) from "
          f"{counts['documents']} documents, {counts['tokens']} word pieces, in {metadata['seconds']:.1f}s")
    print(f"wrote {len(metadata['shards'])} shards, vocab.txt and {METADATA_FILE} to {args.out}")
    if counts.get("long_sentences_split"):
        print(f"note: {counts['long_sentences_split']} sentences longer than max-length - 3 were cut into parts")
    return 0
