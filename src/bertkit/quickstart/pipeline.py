"""The quickstart: the whole BERT pipeline, offline, in minutes, in one process.

    world -> vocab -> pretrain (MLM + NSP) -> fine-tune classify / ner / qa / multilabel / regression
    -> export -> one request per task

Every step prints a progress bar (where it loops) and one line of result, and is one of the public
commands, so `REPORT/commands.sh` reproduces the run step by step. The report folder holds
metrics.json, the loss curves as PNG, index.html (curves + a results table) and commands.sh.

This module runs the steps in order (`Runner`) and owns the output folder; `options.py` says what
a run does, `steps.py` holds the steps, `report.py` writes the report folder.

By default the data is the synthetic world of `world.py` (nothing is downloaded); `corpus` and the
task files run the same pipeline on real data:

    from bertkit.quickstart.pipeline import QuickstartOptions, run_quickstart
    results = run_quickstart(QuickstartOptions(out="quickstart_out"))
    results["classify"]["accuracy"], results["qa"]["f1"]
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import Any, Callable

from .options import REAL_DATA_TASKS, TASK_NAMES, QuickstartOptions, TaskSettings, fast_options
from .report import target_lines, write_run_report
from .steps import (StepResult, answer, example_requests, step_data, step_export, step_finetune, step_pretrain,
                    step_pretrain_eval, step_requests, step_vocab)

MARKER = ".bertkit-quickstart"


class Runner:
    """Runs the steps in order: a header line, the step (with its own progress bars), one result line."""

    def __init__(self, total: int, stream=None):
        self.total, self.index, self.results = total, 0, []
        self.stream = stream or sys.stdout

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def run(self, name: str, title: str, fn: Callable[[StepResult], None]) -> StepResult:
        self.index += 1
        self.say(f"[{self.index}/{self.total}] {title}")
        result = StepResult(name)
        wall, cpu = time.perf_counter(), time.process_time()
        fn(result)
        result.seconds = time.perf_counter() - wall
        result.cpu_seconds = time.process_time() - cpu
        mark = "-" if result.skipped else "✓"
        self.say(f"  {mark} {name}: {result.line}  ({result.seconds:.1f} s)")
        self.results.append(result)
        return result


# --- the pipeline --------------------------------------------------------------------------------------

def run_quickstart(options: QuickstartOptions | None = None, stream=None) -> dict:
    """Runs every step; returns the metrics dict that is also written to OUT/report/metrics.json."""
    options = options or QuickstartOptions()
    # TensorFlow's Python warnings (retracing notices of per-call tf.functions) are noise here.
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        return _run(options, stream)
    finally:
        tf_log.setLevel(level)


def _run(options: QuickstartOptions, stream) -> dict:
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    out = options.out
    if not options.synthetic:
        _check_real_inputs(options)
    _prepare_out_dir(out)
    paths = _paths(options)
    tasks = [t for t in TASK_NAMES if paths[f"{t}_train"]]
    steps = 4 + len(tasks) + (2 if options.export and tasks else 0)
    runner = Runner(steps, stream)
    started = time.perf_counter()
    source = "the synthetic world" if options.synthetic else "your data"
    runner.say(f"bertkit quickstart: vocab -> pretrain -> fine-tune {' / '.join(tasks) or '(no tasks)'}"
               f"{' -> export -> requests' if options.export and tasks else ''} on {source}; writing {out}/")
    state: dict[str, Any] = {"paths": paths}

    runner.run("data", "data: " + ("generate the synthetic world" if options.synthetic else "check the inputs"),
               lambda r: step_data(r, options, paths, progress))
    runner.run("vocab", "vocab: train a WordPiece vocabulary", lambda r: step_vocab(r, options, paths, progress))
    runner.run("pretrain", f"pretrain: {options.config} BERT, masked LM + next sentence prediction",
               lambda r: step_pretrain(r, options, paths, progress))
    runner.run("pretrain_eval", "pretrain: held-out MLM / NSP accuracy vs the unigram baseline",
               lambda r: step_pretrain_eval(r, options, paths, progress))
    for task in tasks:
        runner.run(task, f"fine-tune {task}", lambda r, t=task: step_finetune(r, t, options, paths, progress))
    if options.export and tasks:
        runner.run("export", "export: SavedModels that take raw strings",
                   lambda r: step_export(r, tasks, options, paths, state, progress))
        runner.run("requests", "answer one example request per task from the exported SavedModels",
                   lambda r: step_requests(r, tasks, options, paths, state, progress))
    total = time.perf_counter() - started
    metrics = write_run_report(runner.results, options, paths, total)
    runner.say(f"done in {total / 60:.1f} min ({total:.0f} s). Report: {os.path.join(paths['report'], 'index.html')}")
    for line in target_lines(metrics):
        runner.say(line)
    return metrics


def _prepare_out_dir(out: str) -> None:
    """OUT is created, or a previous quickstart run there is cleared (anything else is refused)."""
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.exists(os.path.join(out, MARKER)):
            raise ValueError(f"{out} exists and is not a quickstart folder; choose another --out")
        for name in os.listdir(out):
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("written by `bertkit quickstart`; a new run clears this folder\n")


def _paths(options: QuickstartOptions) -> dict:
    out = options.out
    p = {"out": out, "data": os.path.join(out, "data"), "vocab": options.vocab or os.path.join(out, "vocab"),
         "pretrain": os.path.join(out, "pretrain"), "heldout": os.path.join(out, "pretrain_heldout"),
         "export": os.path.join(out, "export"), "report": os.path.join(out, "report")}
    for task in TASK_NAMES:
        p[task] = os.path.join(out, task)
    if options.synthetic:
        d = p["data"]
        p.update(corpus=[os.path.join(d, "corpus.txt")], corpus_dev=[os.path.join(d, "corpus_dev.txt")],
                 classify_train=os.path.join(d, "classify_train.tsv"),
                 classify_dev=os.path.join(d, "classify_dev.tsv"),
                 ner_train=os.path.join(d, "ner_train.conll"), ner_dev=os.path.join(d, "ner_dev.conll"),
                 qa_train=os.path.join(d, "qa_train.json"), qa_dev=os.path.join(d, "qa_dev.json"),
                 **{f"{task}_{split}": os.path.join(d, f"{task}_{split}.tsv")
                    for task in ("multilabel", "regression") for split in ("train", "dev")})
    else:
        p.update(corpus=list(options.corpus), corpus_dev=list(options.corpus_dev or []))
        for task in TASK_NAMES:  # with your data: the tasks you give files for (REAL_DATA_TASKS)
            p[f"{task}_train"] = getattr(options, f"{task}_train", None)
            p[f"{task}_dev"] = getattr(options, f"{task}_dev", None)
    return p


def _check_real_inputs(options: QuickstartOptions) -> None:
    files = list(options.corpus) + list(options.corpus_dev or [])
    for task in REAL_DATA_TASKS:
        train, dev = getattr(options, f"{task}_train"), getattr(options, f"{task}_dev")
        if dev and not train:
            raise ValueError(f"--{task}-dev needs --{task}-train")
        files += [f for f in (train, dev) if f]
    if options.vocab:
        files.append(options.vocab)
    out = os.path.abspath(options.out)
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"{f}: no such file")
        if os.path.commonpath([out, os.path.abspath(f)]) == out:
            raise ValueError(f"{f} is inside --out {options.out}, which a quickstart run clears; "
                             "move it or choose another --out")


__all__ = ["QuickstartOptions", "TaskSettings", "fast_options", "run_quickstart", "example_requests", "answer",
           "TASK_NAMES"]
