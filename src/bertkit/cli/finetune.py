"""`bertkit finetune`, `bertkit evaluate`, `bertkit predict`: the fine-tuning tasks (bertkit.tasks)."""

from __future__ import annotations

import json
import sys

from ..data.common import INFERENCE_BATCH_SIZE
from ..tasks.options import FinetuneOptions
from ..tasks.inference import RUNTIMES
from ..tasks.lite import PRECISIONS
from ..tasks.task import all_tasks, task_names
from .options import (add_dataclass_flags, add_model_flag, add_progress_flag, add_task_flags, deprecated_alias,
                      options_from_args, show_progress, task_options)

FINETUNE_HELP = {
    "epochs": "passes over the training data (fractions allowed)",
    "batch_size": "micro-batch size",
    "learning_rate": "peak learning rate of AdamW",
    "warmup_ratio": "share of the steps with a linear warmup",
    "weight_decay": "AdamW's decoupled weight decay (not LayerNorm weights or biases)",
    "accumulation_steps": "micro-batches per optimizer step",
    "precision": "auto: bf16 mixed precision on CPUs with AMX-BF16 units (1.3x faster there, scores inside "
                 "fp32's seed range: docs/benchmarks.md), else fp32, or $BERTKIT_PRECISION where it says "
                 "fp32/bf16; or force fp32, bf16, fp16",
    "xla": "compile the whole training step with XLA (default: on GPUs only)",
    "freeze_encoder": "train the head only",
    "freeze_layers": "freeze the embeddings and the lowest N layers",
    "patience": "stop after this many epochs without dev improvement",
    "metric": "the dev metric that picks the best epoch and early stopping (default: the task's: "
              "classify accuracy (also macro_f1, mcc, and f1 of the positive class for two labels), "
              "regression pearson, multilabel micro_f1, ner/qa f1)",
    "seed": "seed of the head's initialisation, the batch order and dropout",
    "max_steps": "stop after this many optimizer steps",
    "random_init": "ignore --model's weights, keep its config and vocab: a baseline without pretraining",
    "dropout": "hidden dropout rate, also before the classifier (default: the checkpoint's)",
    "attention_dropout": "attention-probability dropout rate (default: the checkpoint's)",
    "pad_multiple": "cut each batch to its longest row rounded up to this (default 32 with XLA, else 1)",
}


def add_runtime_flags(p, precision: str = "auto") -> None:
    """--runtime and --precision, for every command that runs a saved model (predict, evaluate,
    embed, search, serve); `precision` is the command's default ("fp32" for evaluate, which
    measures the model as trained)."""
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="what runs the model: tflite (XNNPACK kernels, faster on CPUs; converted once per "
                        "model and cached in $BERTKIT_CACHE or ~/.cache/bertkit), tensorflow, or auto "
                        "(default: tensorflow where it sees a GPU, else tflite)")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default=precision,
                   help=f"fp32; int8: dynamic-range int8 weights on the TFLite runtime (a 4x smaller model, "
                        f"less memory, about 3x faster on CPUs with VNNI/AMX; a few labels in 1,000 change: see "
                        f"docs/benchmarks.md); auto: int8 where the CPU has int8 dot-product units (VNNI, "
                        f"AMX), else fp32, or $BERTKIT_PRECISION where set (default: {precision})")


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help=f"fine-tune a checkpoint for {', '.join(task_names())}",
                              description="Fine-tunes any bertkit, Hugging Face or Google checkpoint; writes the "
                                          "best model (by the dev metric) as a HF-layout directory.")
    p.add_argument("task", choices=task_names())
    # Not required=True: the deprecated --init must be able to give it (checked in run_finetune).
    add_model_flag(p, "checkpoint to start from (bertkit, HF or Google; required)", required=False)
    deprecated_alias(p, "--init", "--model", "model")
    p.add_argument("--train", required=True, help="training file")
    p.add_argument("--dev", help="dev file: evaluated after every epoch; the best epoch is kept")
    p.add_argument("--out", required=True, help="output model directory")
    add_dataclass_flags(p, FinetuneOptions, FINETUNE_HELP, flags={"patience": "--early-stopping"},
                        choices={"precision": ("auto", "fp32", "bf16", "fp16")})
    add_progress_flag(p)
    add_task_flags(p, all_tasks())
    p.set_defaults(func=run_finetune)

    e = subparsers.add_parser("evaluate", help="score a fine-tuned model on a labelled file",
                              description="Prints the metrics as one JSON object on the last line of stdout. "
                                          "Runs the file in chunks: memory holds the examples and one "
                                          "chunk's features.")
    add_model_flag(e, "the fine-tuned model")
    e.add_argument("--data", required=True)
    e.add_argument("--report-dir", help="also write metrics.json there, and for classify the confusion matrix "
                                        "(confusion_matrix.json and .png; rows true, columns predicted)")
    e.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE,
                   help=f"rows per forward pass ({INFERENCE_BATCH_SIZE})")
    add_runtime_flags(e, precision="fp32")
    add_progress_flag(e)
    add_task_flags(e, all_tasks())
    e.set_defaults(func=run_evaluate, needs_tensorflow=False)

    r = subparsers.add_parser("predict", help="predict with a fine-tuned model; JSON Lines out",
                              description="Reads one input per line (a file or stdin): a text, 'text<TAB>pair' "
                                          "for pair classifiers and regressors, 'question<TAB>context' for qa, "
                                          "'question<TAB>choice<TAB>choice...' or a JSON object for "
                                          "multiple-choice. Writes one JSON "
                                          "object per input line, in input order; a blank line gets the task's "
                                          "empty answer (e.g. {\"label\": null, ...}). Reads and writes in "
                                          "chunks, so memory stays flat on large files.")
    add_model_flag(r, "the fine-tuned model")
    r.add_argument("input", nargs="?", help="input file (default: stdin)")
    r.add_argument("--output", help="write the JSON Lines here (default: stdout)")
    r.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE,
                   help=f"rows per forward pass ({INFERENCE_BATCH_SIZE})")
    add_runtime_flags(r)
    add_progress_flag(r)
    r.set_defaults(func=run_predict, needs_tensorflow=False)


def run_finetune(args) -> int:
    from ..tasks import TASKS, finetune

    if args.model is None:
        raise ValueError("the following arguments are required: --model")
    options = options_from_args(FinetuneOptions, args, progress=show_progress(args))
    task = TASKS[args.task](**task_options(args, TASKS))
    metrics = finetune(task, args.model, args.train, args.out, dev_file=args.dev, options=options)
    print(f"saved the fine-tuned model to {args.out}")
    print(json.dumps(metrics))
    return 0


def run_evaluate(args) -> int:
    from ..tasks import TASKS, evaluate

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    metrics = evaluate(args.model, args.data, TASKS, runtime=args.runtime, report_dir=args.report_dir,
                       precision=args.precision, batch_size=args.batch_size, progress=args.progress,
                       **task_options(args, TASKS))
    if "per_class" in metrics:
        from ..metrics.classification import per_class_report

        print(per_class_report(metrics))
    print(json.dumps(metrics))
    return 0


def run_predict(args) -> int:
    from ..data.common import iter_text_lines
    from ..tasks import TASKS
    from ..tasks.inference import iter_predictions
    from .progress import with_progress

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    source = open(args.input, "rb") if args.input else sys.stdin.buffer
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        lines = with_progress(iter_text_lines(source, args.input or "<stdin>"), args.input, "predict", args.progress)
        for record in iter_predictions(args.model, lines, TASKS, batch_size=args.batch_size,
                                       runtime=args.runtime, precision=args.precision):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if args.input:
            source.close()
        if args.output:
            out.close()
    return 0
