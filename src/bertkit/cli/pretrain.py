"""`bertkit pretrain`: raw text (or `pretrain-data` shards) -> a pretrained BERT directory."""

from __future__ import annotations

from ..tasks.options import PretrainOptions
from .options import (add_dataclass_flags, add_model_flag, add_progress_flag, deprecated_alias, options_from_args,
                      show_progress)
from .pretrain_data import add_format_flag


PRETRAIN_HELP = {
    "config": "preset (tiny, mini, small, medium, base, large) or config.json",
    "max_length": "word pieces per sequence, [CLS] and [SEP]s included",
    "max_predictions": "masked positions per sequence at most",
    "masked_lm_prob": "share of tokens masked",
    "short_seq_prob": "share of instances cut to a random shorter length",
    "batch_size": "micro-batch size",
    "steps": "optimizer steps",
    "learning_rate": "peak learning rate of AdamW",
    "warmup_steps": "steps of linear warmup (default: 10%% of --steps)",
    "accumulation_steps": "micro-batches per optimizer step",
    "precision": "auto: bf16 mixed precision on CPUs with AMX-BF16 units, else fp32, or $BERTKIT_PRECISION "
                 "where it says fp32/bf16; or force fp32, bf16, fp16",
    "xla": "compile the training step with XLA (default: on GPUs, and for fp32 on CPUs)",
    "whole_word_mask": "mask all pieces of a word together",
    "dynamic_mask": "re-draw masks every epoch in tf.data",
    "dupe_factor": "static masking: copies with different masks (default 5)",
    "seed": "seed of the instances, masks, initialisation and batch order",
    "checkpoint_every": "steps between checkpoints",
    "keep_checkpoints": "checkpoints kept",
    "strategy": "tf.distribute strategy; auto uses TF_CONFIG (multi-worker) or all local GPUs",
    "errors": "undecodable bytes in the corpus: fail (file:line) or replace",
}


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
    p.add_argument("--out", required=True)
    add_dataclass_flags(p, PretrainOptions, PRETRAIN_HELP,
                        choices={"precision": ("auto", "fp32", "bf16", "fp16"), "errors": ("strict", "replace"),
                                 "strategy": ("auto", "mirrored", "multiworker", "none")})
    deprecated_alias(p, "--seq-len", "--max-length", "max_length", type=int)
    add_model_flag(p, "start from this pretrained model (a fresh run; resuming --out beats it)", required=False)
    deprecated_alias(p, "--init-from", "--model", "model")
    add_format_flag(p)
    add_progress_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.corpus import expand_corpus
    from ..tasks.pretrain import pretrain, summary_line

    options = options_from_args(PretrainOptions, args, progress=show_progress(args))
    corpus = expand_corpus(args.corpus) if args.corpus else None
    last = pretrain(corpus, args.vocab, args.out, options, data_dir=args.data)
    print(f"saved the pretrained model to {args.out}")
    print(summary_line(last))
    return 0
