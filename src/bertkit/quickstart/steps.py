"""The quickstart's steps: data, vocab, pretraining and its held-out evaluation, one fine-tune per
task, export and one request per task. Each fills a StepResult: one result line, its metrics and the
public commands that reproduce it (REPORT/commands.sh)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex

from .options import MICRO_CONFIG, REAL_DATA_TASKS, QuickstartOptions, TaskSettings
from .world import generate_world


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


# --- step: data ----------------------------------------------------------------------------------------

def step_data(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    if not options.synthetic:
        n = sum(os.path.getsize(f) for f in paths["corpus"])
        tasks = [t for t in REAL_DATA_TASKS if paths[f"{t}_train"]]
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
              f"{n_sentences[0]:,} / {n_sentences[1]:,} NER sentences, {n_questions[0]:,} / {n_questions[1]:,} questions; "
              f"multi-label and regression examples of their topic sentences")
    c = options.world
    r.commands = [command("python", "-m", "bertkit.quickstart.world", "--out", paths["data"], "--seed", c.seed,
                          "--pretrain-stories", c.pretrain_stories, "--train-stories", c.train_stories,
                          "--dev-stories", c.dev_stories, "--questions-per-story", c.questions_per_story)]


# --- step: vocab ---------------------------------------------------------------------------------------

def step_vocab(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
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

def step_pretrain(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    from ..cli.options import flag_args
    from ..cli.pretrain import PRETRAIN_HELP
    from ..tasks.pretrain import PretrainOptions, pretrain

    warmup = options.warmup_steps if options.warmup_steps is not None else options.pretrain_steps // 10
    popts = PretrainOptions(config=_config_arg(options, paths), max_length=options.max_length,
                            batch_size=options.pretrain_batch_size, steps=options.pretrain_steps,
                            learning_rate=options.pretrain_learning_rate, warmup_steps=warmup,
                            dynamic_mask=True, seed=options.seed, precision="fp32", xla=options.xla,
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


def step_pretrain_eval(r: StepResult, options: QuickstartOptions, paths: dict, progress: bool) -> None:
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
    flags = {"max_length": s.max_length, "doc_stride": s.doc_stride, "max_query_length": s.max_query_length,
             **s.extra}
    return {k: v for k, v in flags.items() if v is not None}


def _flag(key: str, value) -> list[str]:
    """A task option as `bertkit finetune` flags: --x VALUE, or --x / --no-x for a bool."""
    name = key.replace("_", "-")
    if isinstance(value, bool):
        return [f"--{name}" if value else f"--no-{name}"]
    return [f"--{name}", value]


def step_finetune(r: StepResult, task: str, options: QuickstartOptions, paths: dict, progress: bool) -> None:
    from ..cli.finetune import FINETUNE_HELP
    from ..cli.options import flag_args
    from ..tasks import TASKS, FinetuneOptions, finetune

    s = options.tasks[task]
    flags = _task_flags(task, s)
    # fp32 on every machine, as pretraining: the report's scores do not depend on the CPU's units.
    fopts = FinetuneOptions(epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate,
                            precision="fp32", xla=options.xla, progress=progress)
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
    elif task == "qa":
        r.line = f"dev exact match {metrics['exact_match']:.2f}, F1 {metrics['f1']:.2f}"
    else:
        r.line = "dev " + ", ".join(f"{k} {metrics[k]:.4f}" for k in TASKS[task].report_metrics if k in metrics)
    argv = ["bertkit", "finetune", task, "--model", paths["pretrain"], "--train", paths[f"{task}_train"],
            *(["--dev", dev] if dev else []), "--out", paths[task],
            *flag_args(fopts, FINETUNE_HELP, {"patience": "--early-stopping"})]
    for key, value in flags.items():
        argv += _flag(key, value)
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


def step_export(r: StepResult, tasks: list[str], options: QuickstartOptions, paths: dict, state: dict,
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


def example_requests(tasks: list[str], paths: dict, options: QuickstartOptions | None = None) -> dict[str, dict]:
    """One request per task, from the first example of its dev file (else its train file): the
    inputs of the export's serving_default and the expected answer."""
    from ..tasks import TASKS

    requests = {}
    for task in tasks:
        source = paths[f"{task}_dev"] or paths[f"{task}_train"]
        settings = options.tasks.get(task) if options else None
        examples = TASKS[task](**(settings.extra if settings else {})).read(source)
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
        elif task == "qa":
            requests[task] = {"inputs": {"question": first.question, "context": first.context},
                              "expected": [a.text for a in first.answers]}
        elif task == "multilabel":
            requests[task] = {"inputs": {"text": first.text}, "expected": first.label.split(",")}
        elif task == "regression":
            requests[task] = {"inputs": {"text": first.text}, "expected": float(first.label)}
    return requests


def answer(predictor, inputs: dict) -> dict:
    """The answer `bertkit serve` gives for one request (`inputs`: those of the export's
    serving_default) from a loaded export (`bertkit.export.runtime.Predictor`), as plain Python."""
    from ..export.runtime import INPUT_KINDS

    # The serving input kind whose input names these are; its item is their values in that order.
    kind, names = next((k, n) for k, n in INPUT_KINDS.items() if set(n) == set(inputs))
    item = inputs[names[0]] if len(names) == 1 else tuple(inputs[name] for name in names)
    return predictor.run(kind, [item])[0]


def _short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def step_requests(r: StepResult, tasks: list[str], options: QuickstartOptions, paths: dict, state: dict,
                   progress: bool) -> None:
    exports = state.get("exports")
    if not exports:
        r.skipped, r.line = True, "no exports to query"
        return
    from tqdm.auto import tqdm

    from ..export.runtime import Predictor

    requests = example_requests(list(exports), paths, options)
    records = []
    for task in tqdm(list(exports), desc="requests", unit="request", disable=not progress):
        request = requests[task]
        got = answer(Predictor.load(exports[task]), request["inputs"])
        records.append({"task": task, "export": exports[task], **request, "answer": got})
        r.commands.append(_request_command(task, exports[task], request["inputs"]))
    r.metrics = {"requests": records}
    lines = []
    for rec in records:
        if rec["task"] == "classify":
            lines.append(f"    classify {_short(rec['inputs']['text'])!r} -> {rec['answer']['label']} "
                         f"(p={max(rec['answer']['probabilities'])}; expected {rec['expected']})")
        elif rec["task"] == "ner":
            found = [f"{e['text']} ({e['type']})" for e in rec["answer"]["entities"]]
            lines.append(f"    ner      {_short(rec['inputs']['text'])!r} -> {found}")
        elif rec["task"] == "qa":
            lines.append(f"    qa       {rec['inputs']['question']!r} -> {rec['answer']['answer']!r} "
                         f"(p={rec['answer']['probability']}; expected {rec['expected'][0]!r})")
        elif rec["task"] == "multilabel":
            lines.append(f"    multilabel {_short(rec['inputs']['text'])!r} -> {rec['answer']['labels']} "
                         f"(expected {rec['expected']})")
        else:
            lines.append(f"    regression {_short(rec['inputs']['text'])!r} -> {rec['answer']['score']:.2f} "
                         f"(expected {rec['expected']})")
    r.line = f"{len(records)} answered from {paths['export']}\n" + "\n".join(lines)


def _request_command(task: str, export: str, inputs: dict) -> str:
    args = ", ".join(f"{k}=tf.constant([{json.dumps(v, ensure_ascii=False)}])" for k, v in inputs.items())
    code = (f"import tensorflow as tf, tensorflow_text; "
            f"serve = tf.saved_model.load({json.dumps(export)}).signatures[\"serving_default\"]; "
            f"print({{k: v.numpy() for k, v in serve({args}).items()}})")
    return command("python", "-c", code)
