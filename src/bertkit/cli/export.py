"""`bertkit export`: a SavedModel that takes raw strings (TF Serving layout: EXPORT_DIR/<version>)."""

from __future__ import annotations

from ..embeddings import POOLING_MODES
from ..tasks.lite import PRECISIONS
from .options import add_model_flag, deprecated_alias


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a model as a SavedModel that takes raw strings",
        description="Writes OUT/<version>/ (TF Serving layout) with tokenization and post-processing inside "
                    "the graph. A fine-tuned model gets its task's signatures; --kind encoder exports the "
                    "encoder (sequence/pooled output, and a sentence embedding pooled as the folder's sentence-transformers "
                    "files say, else mean-pooled); --kind preprocessor "
                    "the tokenizer alone (TF Hub BERT-preprocess convention). Load with "
                    "`import tensorflow_text` then tf.saved_model.load.")
    add_model_flag(p, "the model (bertkit / HF / Google checkpoint)")
    p.add_argument("--out", required=True, help="export directory (the version folder is created inside); "
                                                "with --kind tflite, the .tflite file")
    p.add_argument("--kind", default="auto", choices=["auto", "encoder", "preprocessor", "tflite"],
                   help="auto: the fine-tuned task (an encoder checkpoint exports its encoder); tflite: a "
                        "classifier on token ids [1, --max-length] as a TFLite file")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="tflite: fp32 (default) or int8 (dynamic-range int8 weights: a 4x smaller file; "
                        "accuracy and speed in docs/benchmarks.md)")
    p.add_argument("--version", type=int, help="version number (default: one more than the highest)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--max-length", type=int,
                   help="word pieces per sequence or window (default: the model's task options); preprocessor / "
                        "tflite: the fixed sequence length (default 128, or the model's positions if fewer)")
    deprecated_alias(p, "--seq-length", "--max-length", "max_length", type=int)
    pair = p.add_mutually_exclusive_group()
    pair.add_argument("--pair", dest="pair", action="store_true", default=None,
                      help="classify: serving_default takes (text, text_pair) (default: as fine-tuned)")
    pair.add_argument("--no-pair", dest="pair", action="store_false")
    p.add_argument("--pooling", choices=["auto", *POOLING_MODES, "none"], default="auto",
                   help="encoder: how the sentence_embedding output pools the tokens; auto (default): as the "
                        "folder's sentence-transformers files say (mode, Normalize, max_seq_length), else mean; "
                        "none: no sentence_embedding")
    p.add_argument("--normalize", action="store_true",
                   help="encoder: L2-normalise the sentence embedding (auto also does when the folder says so)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip reloading the SavedModel and comparing it with the model before publishing")
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    from ..export import export_model

    if args.kind == "tflite":
        from ..export.tflite import export_tflite

        path = export_tflite(args.model, args.out, max_length=args.max_length, precision=args.precision)
        print(f"exported to {path}")
        return 0
    if args.precision != "fp32":
        raise ValueError(f"--precision {args.precision} applies to --kind tflite; SavedModels run in fp32")
    if args.kind == "encoder":
        options = {"max_length": args.max_length, "pooling": None if args.pooling == "none" else args.pooling,
                   "normalize": args.normalize}
    elif args.kind == "preprocessor":
        options = {"max_length": args.max_length}
    else:
        options = {"max_length": args.max_length, "pair": args.pair,
                   "pooling": None if args.pooling == "none" else args.pooling, "normalize": args.normalize}
    try:
        path = export_model(args.model, args.out, args.kind, version=args.version, verify=args.verify,
                            overwrite=args.overwrite, **options)
    except FileExistsError as e:  # reported as one line by the CLI, like other bad input
        raise ValueError(f"{e} (--overwrite replaces it)") from None
    print(f"exported to {path}")
    return 0
