"""`bertkit fill-mask`: the masked-LM head's top-k word pieces for each [MASK], as JSON Lines."""

from __future__ import annotations

import json
import sys

from .options import add_model_flag


def register(subparsers) -> None:
    from ..data.common import INFERENCE_BATCH_SIZE
    from ..fill_mask import DEFAULT_TOP_K

    p = subparsers.add_parser(
        "fill-mask", help="the most likely words for each [MASK] in a text (needs a masked-LM head)",
        description="Writes one JSON line per text: for one [MASK] a list of {score, token, token_str, "
                    "sequence}, best first; for several, one such list per mask (transformers' fill-mask "
                    "pipeline format). Texts are the arguments, else one per line of stdin.")
    add_model_flag(p, "a model with a masked-LM head (bertkit pretrain output, BertForMaskedLM / "
                      "BertForPreTraining or Google checkpoint)")
    p.add_argument("texts", nargs="*", help="texts with [MASK] tokens (default: one per line of stdin; a "
                                            "blank line gets [])")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help=f"candidates per mask ({DEFAULT_TOP_K})")
    p.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE,
                   help=f"texts per forward pass, grouped by length ({INFERENCE_BATCH_SIZE})")
    p.set_defaults(func=run_fill_mask)


def run_fill_mask(args) -> int:
    from ..data.common import iter_text_lines
    from ..fill_mask import FillMask

    if args.texts:
        items = [(f"text {i}", text) for i, text in enumerate(args.texts, start=1)]
    else:
        items = list(iter_text_lines(sys.stdin.buffer, "<stdin>"))
    fill = FillMask(args.model, top_k=args.top_k)
    filled = [(where, text) for where, text in items if text.strip()]
    answers = iter(fill([text for _, text in filled], names=[where for where, _ in filled],
                        batch_size=args.batch_size) if filled else [])
    for _, text in items:  # a blank line gets [] so output line i stays input line i
        print(json.dumps(next(answers) if text.strip() else [], ensure_ascii=False))
    return 0
