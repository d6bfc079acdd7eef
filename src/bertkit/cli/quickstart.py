"""`bertkit quickstart`: the whole pipeline, offline, in minutes (see bertkit.quickstart)."""

from __future__ import annotations

from .options import add_progress_flag, deprecated_alias

REAL_DATA_VOCAB_SIZE = 8000


def register(subparsers) -> None:
    from ..quickstart.options import QuickstartOptions

    default = QuickstartOptions()  # the defaults the help quotes: declared once, there
    p = subparsers.add_parser(
        "quickstart", help="the whole pipeline in minutes: vocab, pretrain, fine-tune, export, query",
        description="Generates a synthetic world of stories (nothing is downloaded), trains a WordPiece vocab, "
                    "pretrains a small BERT (MLM + NSP), fine-tunes it for classification, NER, QA, multi-label "
                    "classification and regression, exports the five models as SavedModels and "
                    "answers one request with each. Writes "
                    "OUT/report: metrics.json, loss curves (PNG), index.html and commands.sh (every step as "
                    "a command). With --corpus (and task files) it runs on your data instead.")
    p.add_argument("--out", default="quickstart_out", help="output folder (default: ./quickstart_out); a "
                   "previous quickstart run there is replaced")
    p.add_argument("--fast", action="store_true", help="a smoke run in well under a minute: a tiny world "
                   "and model, a few steps (checks the plumbing; the metrics mean nothing)")
    real = p.add_argument_group("real data instead of the synthetic world")
    real.add_argument("--corpus", nargs="+", metavar="FILE", help="pretraining text: one sentence per line "
                      "and a blank line between documents, or prose")
    real.add_argument("--corpus-dev", nargs="+", metavar="FILE", help="held-out text for MLM/NSP accuracy")
    for task, kind in (("classify", "TSV: text<TAB>label"), ("ner", "CoNLL: word ... TAG"),
                       ("qa", "SQuAD v1.1 JSON")):
        real.add_argument(f"--{task}-train", metavar="FILE", help=f"{task} training file ({kind})")
        real.add_argument(f"--{task}-dev", metavar="FILE", help=f"{task} dev file (metrics)")
    real.add_argument("--vocab", help="use this vocab.txt (or directory) instead of training one")
    real.add_argument("--vocab-size", type=int, help=f"vocab to train (default: {default.vocab_size} for the world, "
                      f"{REAL_DATA_VOCAB_SIZE} with --corpus)")
    m = p.add_argument_group("model and training")
    m.add_argument("--config", help=f"model preset (default: {default.config}) or config.json")
    m.add_argument("--pretrain-steps", type=int, help=f"pretraining steps (default {default.pretrain_steps})")
    m.add_argument("--max-length", type=int,
                   help=f"pretraining sequence length in word pieces (default {default.max_length})")
    deprecated_alias(m, "--seq-len", "--max-length", "max_length", type=int)
    m.add_argument("--epochs", type=float, help="fine-tuning epochs, every task (default: per task)")
    m.add_argument("--seed", type=int, help=f"pretraining seed and world seed (default {default.seed})")
    m.add_argument("--no-xla", dest="xla", action="store_false", default=None, help="do not compile with XLA")
    m.add_argument("--no-export", dest="export", action="store_false", help="stop after fine-tuning")
    add_progress_flag(p)
    p.set_defaults(func=run)


def options_from_args(args):
    import dataclasses

    from ..quickstart.options import QuickstartOptions, fast_options

    options = fast_options() if args.fast else QuickstartOptions()
    changes = {"out": args.out, "export": args.export}
    if not args.progress:  # --no-progress; otherwise bars when stderr is a terminal
        changes["progress"] = False
    for key in ("corpus", "corpus_dev", "classify_train", "classify_dev", "ner_train", "ner_dev", "qa_train",
                "qa_dev", "vocab", "vocab_size", "config", "pretrain_steps", "max_length", "xla"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    task_files = [k for k in ("classify_train", "ner_train", "qa_train", "classify_dev", "ner_dev", "qa_dev")
                  if getattr(args, k)]
    if task_files and not args.corpus:
        raise ValueError(f"--{task_files[0].replace('_', '-')} needs --corpus (the pretraining text of your data)")
    if args.corpus_dev and not args.corpus:
        raise ValueError("--corpus-dev needs --corpus")
    if args.corpus and args.vocab_size is None and not args.vocab:
        changes["vocab_size"] = REAL_DATA_VOCAB_SIZE
    if args.seed is not None:
        changes["seed"] = args.seed
        changes["world"] = dataclasses.replace(options.world, seed=args.seed)
    if args.epochs is not None:
        changes["tasks"] = {t: dataclasses.replace(s, epochs=args.epochs) for t, s in options.tasks.items()}
    return dataclasses.replace(options, **changes)


def run(args) -> int:
    from ..quickstart.pipeline import run_quickstart

    run_quickstart(options_from_args(args))
    return 0
