"""`bertkit pretrain`: raw text (or `pretrain-data` shards) -> a pretrained BERT directory."""

from __future__ import annotations

from .options import add_model_flag, add_progress_flag, deprecated_alias, show_progress
from .pretrain_data import add_format_flag


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain BERT (masked LM + next sentence prediction) from raw text",
        description="Builds NSP/MLM instances from the corpus (once, in OUT/data), trains, and writes the model "
                    "with its pretraining heads to OUT in the HF layout. Re-running the same command resumes "
                    "from OUT/checkpoints.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", nargs="+", metavar="PATH",
                     help="raw text files (plain or gzip); a folder means every file in it")
    src.add_argument("--data", help="a directory written by `bertkit pretrain-data`")
    p.add_argument("--vocab", required=True, help="vocab.txt or a directory with one (e.g. from `bertkit vocab`)")
    p.add_argument("--config", default="mini", help="preset (tiny, mini, small, medium, base, large) or config.json")
    p.add_argument("--out", required=True)
    p.add_argument("--max-length", dest="seq_len", type=int, default=128,
                   help="word pieces per sequence, [CLS] and [SEP]s included (default 128)")
    deprecated_alias(p, "--seq-len", "--max-length", "seq_len", type=int)
    p.add_argument("--max-predictions", type=int, default=20)
    p.add_argument("--masked-lm-prob", type=float, default=0.15, help="share of tokens masked (0.15)")
    p.add_argument("--short-seq-prob", type=float, default=0.1,
                   help="share of instances cut to a random shorter length (0.1)")
    p.add_argument("--batch-size", type=int, default=32, help="micro-batch size")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, help="default: 10%% of --steps")
    p.add_argument("--accumulation-steps", type=int, default=1)
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--no-xla", dest="xla", action="store_false")
    p.add_argument("--whole-word-mask", action="store_true")
    p.add_argument("--dynamic-mask", action="store_true", help="re-draw masks every epoch in tf.data")
    p.add_argument("--dupe-factor", type=int, help="static masking: copies with different masks (default 5)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--keep-checkpoints", type=int, default=3)
    add_model_flag(p, "start from this pretrained model (a fresh run; resuming --out beats it)", dest="init_from",
                   required=False)
    deprecated_alias(p, "--init-from", "--model", "init_from")
    p.add_argument("--strategy", choices=["auto", "mirrored", "multiworker", "none"], default="auto",
                   help="tf.distribute strategy; auto uses TF_CONFIG (multi-worker) or all local GPUs")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict",
                   help="undecodable bytes in the corpus: fail (file:line) or replace")
    add_format_flag(p)
    add_progress_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..tasks.pretrain import PretrainOptions, pretrain, summary_line

    options = PretrainOptions(
        config=args.config, seq_len=args.seq_len, max_predictions=args.max_predictions, batch_size=args.batch_size,
        masked_lm_prob=args.masked_lm_prob, short_seq_prob=args.short_seq_prob,
        steps=args.steps, learning_rate=args.learning_rate, warmup_steps=args.warmup_steps,
        accumulation_steps=args.accumulation_steps, precision=args.precision, xla=args.xla,
        whole_word_mask=args.whole_word_mask, dynamic_mask=args.dynamic_mask, dupe_factor=args.dupe_factor,
        seed=args.seed, checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
        init_from=args.init_from, strategy=args.strategy, errors=args.errors, progress=show_progress(args),
        input_format=args.input_format)
    from ..data.pretraining import expand_corpus

    corpus = expand_corpus(args.corpus) if args.corpus else None
    last = pretrain(corpus, args.vocab, args.out, options, data_dir=args.data)
    print(f"saved the pretrained model to {args.out}")
    print(summary_line(last))
    return 0
