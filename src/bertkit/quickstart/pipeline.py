"""The quickstart: the whole BERT pipeline, offline, in minutes, in one process.

    world -> vocab -> pretrain (MLM + NSP) -> fine-tune classify / ner / qa -> export -> 3 requests

Every step prints a progress bar (where it loops) and one line of result, and is one of the public
commands, so `REPORT/commands.sh` reproduces the run step by step. The report folder holds
metrics.json, the loss curves as PNG, index.html (curves + a results table) and commands.sh.

By default the data is the synthetic world of `world.py` (nothing is downloaded); `corpus` and the
task files run the same pipeline on real data:

    from bertkit.quickstart.pipeline import QuickstartOptions, run_quickstart
    results = run_quickstart(QuickstartOptions(out="quickstart_out"))
    results["classify"]["accuracy"], results["qa"]["f1"]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import re
import shlex
import shutil
import sys
import time
from typing import Any, Callable

from .world import WorldConfig, generate_world

log = logging.getLogger("bertkit")

TASK_NAMES = ("classify", "ner", "qa")
MARKER = ".bertkit-quickstart"
# The quality bars of the synthetic world (issue 7): checked and shown in the report.
TARGETS = {"classify": ("accuracy", 0.95), "ner": ("f1", 0.95), "qa": ("f1", 90.0)}


@dataclasses.dataclass
class TaskSettings:
    """Fine-tuning hyper-parameters of one task (`bertkit finetune` flags)."""

    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 5e-4
    max_length: int = 96
    doc_stride: int | None = None  # qa
    max_query_length: int | None = None  # qa


@dataclasses.dataclass
class QuickstartOptions:
    out: str = "quickstart_out"
    # Real data instead of the synthetic world: the corpus switches the world off; each task
    # runs when its train file is given (its dev file gives the metrics).
    corpus: list[str] | None = None
    corpus_dev: list[str] | None = None  # held-out text for the MLM / NSP evaluation
    classify_train: str | None = None
    classify_dev: str | None = None
    ner_train: str | None = None
    ner_dev: str | None = None
    qa_train: str | None = None
    qa_dev: str | None = None
    vocab: str | None = None  # an existing vocab.txt or directory: no vocab training
    vocab_size: int = 2000  # the world has ~400 distinct words: its vocab stops at ~1,100 (whole words)
    world: WorldConfig = dataclasses.field(default_factory=WorldConfig)
    # model and pretraining
    config: str = "tiny"
    max_length: int = 96  # a story is at most ~75 word pieces
    pretrain_steps: int = 800
    pretrain_batch_size: int = 64
    pretrain_learning_rate: float = 3e-3
    warmup_steps: int | None = None
    seed: int = 12345
    # No XLA: on 2 CPU cores the tiny model's steps run faster without it (and fine-tuning's
    # bucketed batch widths would each compile a program).
    xla: bool = False
    tasks: dict[str, TaskSettings] = dataclasses.field(default_factory=lambda: {
        "classify": TaskSettings(epochs=3, learning_rate=1e-3, max_length=96),
        "ner": TaskSettings(epochs=1, learning_rate=1e-3, max_length=64),
        "qa": TaskSettings(epochs=3, learning_rate=1e-3, max_length=96, doc_stride=48, max_query_length=24),
    })
    export: bool = True
    progress: bool | None = None  # None: bars when stderr is a terminal
    fast: bool = False  # set by `fast_options`: a seconds-long smoke run

    @property
    def synthetic(self) -> bool:
        return not self.corpus


def fast_options(**overrides) -> QuickstartOptions:
    """A smoke run (tests, `bertkit quickstart --fast`): a small world, a 1-layer model, no XLA, a
    few steps. Checks that every step runs and writes its outputs; its metrics mean nothing."""
    options = QuickstartOptions(
        world=WorldConfig(pretrain_stories=150, train_stories=64, dev_stories=16, questions_per_story=2),
        vocab_size=400, config="micro", max_length=96, pretrain_steps=8, pretrain_batch_size=16,
        xla=False, fast=True,
        tasks={"classify": TaskSettings(epochs=1, batch_size=16, learning_rate=1e-3),
               "ner": TaskSettings(epochs=1, batch_size=16, learning_rate=1e-3, max_length=64),
               "qa": TaskSettings(epochs=1, batch_size=16, learning_rate=1e-3, max_length=96, doc_stride=48,
                                  max_query_length=24)})
    return dataclasses.replace(options, **overrides)


# A 1-layer config for the smoke run (--fast): not a preset, written next to the vocab.
MICRO_CONFIG = {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 128,
                "max_position_embeddings": 96}


# --- steps: timing, one-line results, commands ---------------------------------------------------------

@dataclasses.dataclass
class StepResult:
    name: str
    line: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    metrics: dict = dataclasses.field(default_factory=dict)
    commands: list[str] = dataclasses.field(default_factory=list)
    skipped: bool = False


def command(*argv) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


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
               lambda r: _step_data(r, options, paths, progress))
    runner.run("vocab", "vocab: train a WordPiece vocabulary", lambda r: _step_vocab(r, options, paths, progress))
    runner.run("pretrain", f"pretrain: {options.config} BERT, masked LM + next sentence prediction",
               lambda r: _step_pretrain(r, options, paths, progress))
    runner.run("pretrain_eval", "pretrain: held-out MLM / NSP accuracy vs the unigram baseline",
               lambda r: _step_pretrain_eval(r, options, paths, progress))
    for task in tasks:
        runner.run(task, f"fine-tune {task}", lambda r, t=task: _step_finetune(r, t, options, paths, progress))
    if options.export and tasks:
        runner.run("export", "export: SavedModels that take raw strings",
                   lambda r: _step_export(r, tasks, options, paths, state, progress))
        runner.run("requests", "answer three example requests from the exported SavedModels",
                   lambda r: _step_requests(r, tasks, options, paths, state, progress))
    total = time.perf_counter() - started
    metrics = _write_report(runner.results, options, paths, total)
    runner.say(f"done in {total / 60:.1f} min ({total:.0f} s). Report: {os.path.join(paths['report'], 'index.html')}")
    for line in _target_lines(metrics):
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
                 qa_train=os.path.join(d, "qa_train.json"), qa_dev=os.path.join(d, "qa_dev.json"))
    else:
        p.update(corpus=list(options.corpus), corpus_dev=list(options.corpus_dev or []))
        for task in TASK_NAMES:
            p[f"{task}_train"] = getattr(options, f"{task}_train")
            p[f"{task}_dev"] = getattr(options, f"{task}_dev")
    return p


def _check_real_inputs(options: QuickstartOptions) -> None:
    files = list(options.corpus) + list(options.corpus_dev or [])
    for task in TASK_NAMES:
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


# --- step: data ----------------------------------------------------------------------------------------

def _step_data(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    if not options.synthetic:
        n = sum(os.path.getsize(f) for f in paths["corpus"])
        tasks = [t for t in TASK_NAMES if paths[f"{t}_train"]]
        r.line = f"corpus {len(paths['corpus'])} file(s), {n / 1e6:.1f} MB; tasks: {', '.join(tasks) or 'none'}"
        r.metrics = {"corpus_bytes": n, "tasks": tasks}
        return
    world = generate_world(options.world, progress=progress)
    world.write(paths["data"])
    n_questions = sum(len(s.questions) for s in world.train), sum(len(s.questions) for s in world.dev)
    n_sentences = sum(len(s.sentences) for s in world.train), sum(len(s.sentences) for s in world.dev)
    size = os.path.getsize(paths["corpus"][0])
    r.metrics = {"pretrain_stories": len(world.pretrain) + len(world.train), "train_stories": len(world.train),
                 "dev_stories": len(world.dev), "ner_sentences": n_sentences, "qa_questions": n_questions,
                 "corpus_bytes": size, "world": dataclasses.asdict(options.world)}
    r.line = (f"{len(world.pretrain) + len(world.train):,} stories to pretrain on ({size / 1e6:.1f} MB); "
              f"{len(world.train)} train / {len(world.dev)} dev stories, "
              f"{n_sentences[0]:,} / {n_sentences[1]:,} NER sentences, {n_questions[0]:,} / {n_questions[1]:,} questions")
    c = options.world
    r.commands = [command("python", "-m", "bertkit.quickstart.world", "--out", paths["data"], "--seed", c.seed,
                          "--pretrain-stories", c.pretrain_stories, "--train-stories", c.train_stories,
                          "--dev-stories", c.dev_stories, "--questions-per-story", c.questions_per_story)]


# --- step: vocab ---------------------------------------------------------------------------------------

def _step_vocab(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    from ..tokenizer import BertTokenizer, load_tokenizer
    from ..tokenizer.vocab import VocabStats, train_vocab

    if options.vocab:
        tok = load_tokenizer(options.vocab)
        r.line, r.skipped = f"using {options.vocab} ({tok.vocab_size:,} tokens)", True
        r.metrics = {"vocab_size": tok.vocab_size, "trained": False}
    else:
        stats = VocabStats()
        # The vocab trainer warns when the corpus runs out of merges before vocab_size; a small
        # world does, by design (every word of it gets its own token), so that is not news here.
        vocab_log = logging.getLogger("bertkit.tokenizer.vocab")
        level = vocab_log.level
        vocab_log.setLevel(logging.ERROR)
        try:
            tokens = train_vocab(paths["corpus"], options.vocab_size, progress=progress, stats=stats)
        finally:
            vocab_log.setLevel(level)
        tok = BertTokenizer(tokens, lower_case=True, check_casing=False)
        tok.save(paths["vocab"])
        r.metrics = {"vocab_size": len(tokens), "words": stats.words, "distinct_words": stats.distinct_words,
                     "trained": True}
        r.line = (f"{len(tokens):,} WordPiece tokens from {stats.words:,} words "
                  f"({stats.distinct_words:,} distinct) -> {paths['vocab']}/vocab.txt")
        r.commands = [command("bertkit", "vocab", "--corpus", *paths["corpus"], "--vocab-size", options.vocab_size,
                              "--out", paths["vocab"])]
    if options.config == "micro":
        with open(os.path.join(paths["out"], "micro_config.json"), "w") as f:
            json.dump({**MICRO_CONFIG, "vocab_size": tok.vocab_size}, f, indent=2)


def _config_arg(options: QuickstartOptions, paths: dict) -> str:
    return os.path.join(paths["out"], "micro_config.json") if options.config == "micro" else options.config


# --- step: pretrain ------------------------------------------------------------------------------------

def _step_pretrain(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    from ..cli.options import flag_args
    from ..cli.pretrain import PRETRAIN_HELP
    from ..tasks.pretrain import PretrainOptions, pretrain

    warmup = options.warmup_steps if options.warmup_steps is not None else options.pretrain_steps // 10
    popts = PretrainOptions(config=_config_arg(options, paths), max_length=options.max_length,
                            batch_size=options.pretrain_batch_size, steps=options.pretrain_steps,
                            learning_rate=options.pretrain_learning_rate, warmup_steps=warmup,
                            dynamic_mask=True, seed=options.seed, xla=options.xla,
                            checkpoint_every=options.pretrain_steps, keep_checkpoints=1, progress=progress)
    last = pretrain(paths["corpus"], paths["vocab"], paths["pretrain"], popts)
    with open(os.path.join(paths["pretrain"], "history.json")) as f:
        history = [h for h in json.load(f) if "loss" in h]
    steps = [h for h in history if h["step"] > 1]
    r.metrics = {"steps": options.pretrain_steps, "batch_size": options.pretrain_batch_size,
                 "max_length": options.max_length, "config": options.config,
                 "train_loss": last.get("loss"), "train_mlm_accuracy": last.get("mlm_accuracy"),
                 "train_nsp_accuracy": last.get("nsp_accuracy"),
                 "seq_per_s": sum(h["seq_per_s"] for h in steps[1:]) / max(1, len(steps[1:]))}
    r.line = (f"{options.pretrain_steps} steps x {options.pretrain_batch_size} x {options.max_length}: loss "
              f"{history[0]['loss']:.2f} -> {last['loss']:.2f}, MLM acc {last['mlm_accuracy']:.3f}, NSP acc "
              f"{last['nsp_accuracy']:.3f} (training batches)")
    # The printed command is made from the options the run used (flag_args is options_from_args' inverse).
    r.commands = [command("bertkit", "pretrain", "--corpus", *paths["corpus"], "--vocab", paths["vocab"],
                          *flag_args(popts, PRETRAIN_HELP), "--out", paths["pretrain"])]


def _step_pretrain_eval(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    """MLM / NSP accuracy on held-out text (the dev stories), and the unigram baseline: always
    predicting the most frequent word piece of the pretraining data."""
    from .heldout import evaluate_pretraining

    result = evaluate_pretraining(paths["pretrain"], os.path.join(paths["pretrain"], "data"),
                                  paths["corpus_dev"] or None, paths["heldout"], options.max_length,
                                  seed=options.seed, progress=progress)
    r.metrics = result
    where = "held-out" if result.get("heldout") else "training data"
    r.line = (f"MLM accuracy {result['mlm_accuracy']:.3f} vs unigram baseline {result['unigram_accuracy']:.3f} "
              f"(always '{result['unigram_token']}'), NSP accuracy {result['nsp_accuracy']:.3f} "
              f"({where}, {result['instances']:,} sequences)")
    r.commands = [command("python", "-m", "bertkit.quickstart.heldout", "--model", paths["pretrain"],
                          "--train-data", os.path.join(paths["pretrain"], "data"),
                          *(["--corpus", *paths["corpus_dev"]] if paths["corpus_dev"] else []),
                          "--max-length", options.max_length, "--seed", options.seed, "--out", paths["heldout"])]


# --- step: fine-tune -----------------------------------------------------------------------------------

def _task_flags(task: str, s: TaskSettings) -> dict:
    flags = {"max_length": s.max_length}
    if task == "qa":
        flags.update(doc_stride=s.doc_stride, max_query_length=s.max_query_length)
    return {k: v for k, v in flags.items() if v is not None}


def _step_finetune(r: StepResult, task: str, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    from ..cli.finetune import FINETUNE_HELP
    from ..cli.options import flag_args
    from ..tasks import TASKS, FinetuneOptions, finetune

    s = options.tasks[task]
    flags = _task_flags(task, s)
    fopts = FinetuneOptions(epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate,
                            xla=options.xla, progress=progress)
    dev = paths[f"{task}_dev"]
    metrics = finetune(TASKS[task](**flags), paths["pretrain"], paths[f"{task}_train"], paths[task],
                       dev_file=dev, options=fopts)
    r.metrics = {"dev": metrics, "epochs": s.epochs, "batch_size": s.batch_size,
                 "learning_rate": s.learning_rate, **flags}
    if not dev:
        r.line = f"trained (no dev file, no metrics) -> {paths[task]}"
    elif task == "classify":
        r.line = f"dev accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics.get('macro_f1', float('nan')):.4f}"
    elif task == "ner":
        r.line = (f"dev entity F1 {metrics['f1']:.4f} (precision {metrics['precision']:.4f}, "
                  f"recall {metrics['recall']:.4f})")
    else:
        r.line = f"dev exact match {metrics['exact_match']:.2f}, F1 {metrics['f1']:.2f}"
    argv = ["bertkit", "finetune", task, "--model", paths["pretrain"], "--train", paths[f"{task}_train"],
            *(["--dev", dev] if dev else []), "--out", paths[task],
            *flag_args(fopts, FINETUNE_HELP, {"patience": "--early-stopping"})]
    for key, value in flags.items():
        argv += [f"--{key.replace('_', '-')}", value]
    r.commands = [command(*argv)]
    if dev:
        r.commands.append(command("bertkit", "evaluate", "--model", paths[task], "--data", dev))


# --- steps: export and requests ------------------------------------------------------------------------

def export_available() -> bool:
    try:
        from ..export import export_model  # noqa: F401
    except ImportError:
        return False
    return True


def _step_export(r: StepResult, tasks: list[str], options: QuickstartOptions, paths: dict, state: dict,
                 progress: bool) -> None:
    if not export_available():
        r.skipped, r.line = True, "bertkit.export is not available in this install; skipped"
        return
    from tqdm.auto import tqdm

    from ..export import export_model

    exported = {}
    for task in tqdm(tasks, desc="export", unit="model", disable=not progress):
        target = os.path.join(paths["export"], task)
        exported[task] = export_model(paths[task], target)  # = `bertkit export` with its defaults
        r.commands.append(command("bertkit", "export", "--model", paths[task], "--out", target))
    state["exports"] = exported
    sizes = {t: _dir_size(p) for t, p in exported.items()}
    r.metrics = {"paths": exported, "bytes": sizes}
    r.line = ", ".join(f"{t} -> {p} ({sizes[t] / 1e6:.1f} MB)" for t, p in exported.items())


def _dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def example_requests(tasks: list[str], paths: dict) -> dict[str, dict]:
    """One request per task, from the first example of its dev file (else its train file)."""
    from ..tasks import TASKS

    requests = {}
    for task in tasks:
        source = paths[f"{task}_dev"] or paths[f"{task}_train"]
        examples = TASKS[task]().read(source)
        first = examples[0]
        if task == "classify":
            requests[task] = {"inputs": {"text": first.text, **({"text_pair": first.text_pair}
                                                                  if first.text_pair is not None else {})},
                              "expected": first.label}
        elif task == "ner":
            from ..data.ner import tag_spans

            text = re.sub(r" ([.,;:!?%)])", r"\1", " ".join(first.words))  # CoNLL words -> raw text
            expected = [" ".join(first.words[a:b + 1]) + f" ({t})" for t, a, b in tag_spans(first.tags or [])]
            requests[task] = {"inputs": {"text": text}, "expected": expected}
        else:
            requests[task] = {"inputs": {"question": first.question, "context": first.context},
                              "expected": [a.text for a in first.answers]}
    return requests


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def answer(task: str, serve, inputs: dict) -> dict:
    """Calls a SavedModel's serving_default on one request; returns its answer as plain Python."""
    import tensorflow as tf

    out = serve(**{k: tf.constant([v]) for k, v in inputs.items()})
    out = {k: v.numpy()[0] for k, v in out.items()}
    if task == "classify":
        return {"label": _decode(out["label"]), "probability": round(float(out["probabilities"].max()), 4)}
    if task == "ner":
        n = int(out["num_entities"])
        return {"entities": [f"{_decode(out['entity_texts'][i])} ({_decode(out['entity_types'][i])})"
                             for i in range(n)]}
    return {"answer": _decode(out["answer"]), "start": int(out["start"]), "end": int(out["end"]),
            "probability": round(float(out["probability"]), 4)}


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _step_requests(r: StepResult, tasks: list[str], options: QuickstartOptions, paths: dict, state: dict,
                   progress: bool) -> None:
    exports = state.get("exports")
    if not exports:
        r.skipped, r.line = True, "no exports to query"
        return
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModels use)
    from tqdm.auto import tqdm

    requests = example_requests(list(exports), paths)
    records = []
    for task in tqdm(list(exports), desc="requests", unit="request", disable=not progress):
        serve = tf.saved_model.load(exports[task]).signatures["serving_default"]
        request = requests[task]
        got = answer(task, serve, request["inputs"])
        records.append({"task": task, "export": exports[task], **request, "answer": got})
        r.commands.append(_request_command(task, exports[task], request["inputs"]))
    r.metrics = {"requests": records}
    lines = []
    for rec in records:
        if rec["task"] == "classify":
            lines.append(f"    classify {_short(rec['inputs']['text'])!r} -> {rec['answer']['label']} "
                         f"(p={rec['answer']['probability']}; expected {rec['expected']})")
        elif rec["task"] == "ner":
            lines.append(f"    ner      {_short(rec['inputs']['text'])!r} -> {rec['answer']['entities']}")
        else:
            lines.append(f"    qa       {rec['inputs']['question']!r} -> {rec['answer']['answer']!r} "
                         f"(p={rec['answer']['probability']}; expected {rec['expected'][0]!r})")
    r.line = f"{len(records)} answered from {paths['export']}\n" + "\n".join(lines)


def _request_command(task: str, export: str, inputs: dict) -> str:
    args = ", ".join(f"{k}=tf.constant([{json.dumps(v, ensure_ascii=False)}])" for k, v in inputs.items())
    code = (f"import tensorflow as tf, tensorflow_text; "
            f"serve = tf.saved_model.load({json.dumps(export)}).signatures[\"serving_default\"]; "
            f"print({{k: v.numpy() for k, v in serve({args}).items()}})")
    return command("python", "-c", code)


# --- report --------------------------------------------------------------------------------------------

def _target_lines(metrics: dict) -> list[str]:
    lines = []
    for task, (key, bar) in TARGETS.items():
        value = metrics.get("results", {}).get(task, {}).get(key)
        if value is not None and metrics.get("synthetic"):
            lines.append(f"  {task} dev {key} {value:.4g} (target > {bar:g}): {'ok' if value > bar else 'BELOW TARGET'}")
    pre = metrics.get("results", {}).get("pretrain")
    if pre:
        lines.append(f"  MLM accuracy {pre['mlm_accuracy']:.3f} vs unigram baseline {pre['unigram_accuracy']:.3f}")
    return lines


def _write_report(results: list[StepResult], options: QuickstartOptions, paths: dict, total: float) -> dict:
    from .report import write_report

    by_name = {r.name: r for r in results}
    summary: dict[str, Any] = {}
    if "pretrain_eval" in by_name:
        summary["pretrain"] = {**by_name["pretrain_eval"].metrics, **{
            k: v for k, v in by_name["pretrain"].metrics.items() if k.startswith("train_") or k == "seq_per_s"}}
    for task in TASK_NAMES:
        if task in by_name:
            summary[task] = by_name[task].metrics.get("dev", {})
    if "requests" in by_name:
        summary["requests"] = by_name["requests"].metrics.get("requests", [])
    metrics = {
        "synthetic": options.synthetic,
        "total_seconds": round(total, 2),
        "steps": [{"name": r.name, "seconds": round(r.seconds, 2), "cpu_seconds": round(r.cpu_seconds, 2),
                   "result": r.line, "skipped": r.skipped, "metrics": r.metrics, "commands": r.commands}
                  for r in results],
        "results": summary,
        "targets": {t: {"metric": k, "above": v} for t, (k, v) in TARGETS.items()} if options.synthetic else {},
        "options": _jsonable(dataclasses.asdict(options)),
        "environment": _environment(),
    }
    write_report(paths["report"], metrics, paths)
    return metrics


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _environment() -> dict:
    import tensorflow as tf

    from .. import __version__

    return {"bertkit": __version__, "tensorflow": tf.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU"))}


__all__ = ["QuickstartOptions", "TaskSettings", "fast_options", "run_quickstart", "example_requests", "answer"]
