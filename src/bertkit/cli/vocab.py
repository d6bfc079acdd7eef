"""`bertkit vocab` (train a WordPiece vocab) and `bertkit tokenize` (show how text is split)."""

from __future__ import annotations

import sys
import time

from .options import add_progress_flag, show_progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "vocab", help="train a WordPiece vocab.txt from raw text files",
        description="Counts words in the corpus (streaming, with the same basic tokenizer the vocab will be "
                    "used with) and learns WordPiece pieces. Writes OUT/vocab.txt and OUT/tokenizer_config.json "
                    "(special tokens [PAD] [UNK] [CLS] [SEP] [MASK] first).")
    p.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                   help="UTF-8 text files; a folder means every file in it")
    p.add_argument("--vocab-size", type=int, required=True, metavar="N", help="number of tokens to produce")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    casing = p.add_mutually_exclusive_group()
    casing.add_argument("--lower-case", dest="lower_case", action="store_true", default=True,
                        help="lower-case and strip accents, as uncased BERT (default)")
    casing.add_argument("--cased", dest="lower_case", action="store_false", help="keep case and accents")
    p.add_argument("--errors", choices=("strict", "replace"), default="strict",
                   help="non-UTF-8 bytes: stop with the file and line (strict) or replace them (replace)")
    p.add_argument("--unused", type=int, default=0, metavar="K", help="reserve [unused0]..[unusedK-1] slots")
    p.add_argument("--min-frequency", type=int, default=2, help="stop merging below this pair count")
    p.add_argument("--limit-alphabet", type=int, default=1000, help="keep at most this many characters")
    add_progress_flag(p)
    p.set_defaults(func=run_vocab)

    t = subparsers.add_parser("tokenize", help="print the word pieces, ids and offsets of some text",
                              description="Debugging aid: tokenize TEXT (or stdin lines) with a tokenizer.")
    t.add_argument("--tokenizer", required=True, metavar="PATH", help="model directory or vocab.txt")
    t.add_argument("text", nargs="*", help="text to tokenize (default: read lines from stdin)")
    t.set_defaults(func=run_tokenize)


def run_vocab(args) -> int:
    from ..tokenizer import BertTokenizer
    from ..tokenizer.vocab import VocabStats, train_vocab

    stats = VocabStats()
    start = time.perf_counter()
    from ..data.corpus import expand_corpus

    tokens = train_vocab(expand_corpus(args.corpus), args.vocab_size, lower_case=args.lower_case, num_unused=args.unused,
                         min_frequency=args.min_frequency, limit_alphabet=args.limit_alphabet,
                         errors=args.errors, progress=show_progress(args), stats=stats)
    # No casing check: a cased vocab trained on lower-case text is the user's (valid) choice.
    tok = BertTokenizer(tokens, lower_case=args.lower_case, check_casing=False)
    tok.save(args.out)
    print(f"wrote {args.out}/vocab.txt: {len(tokens)} tokens ({stats.alphabet} characters, {stats.merges} "
          f"merged pieces) from {stats.words:,} words ({stats.distinct_words:,} distinct) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def run_tokenize(args) -> int:
    from ..tokenizer import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    texts = [" ".join(args.text)] if args.text else [line.rstrip("\n") for line in sys.stdin]
    for text in texts:
        enc = tok.encode(text)
        for token, tid, (s, e), w in zip(enc.tokens, enc.ids, enc.offsets, enc.word_ids):
            span = repr(text[s:e]) if w is not None else ""
            print(f"{tid:>7}  {token:<20} {s:>5}:{e:<5} {span}")
        print()
    return 0
