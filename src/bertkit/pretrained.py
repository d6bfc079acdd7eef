"""Model directories: load any HF / Google / bertkit checkpoint, save in the HF layout.

A bertkit model directory IS a Hugging Face BERT directory:
  config.json            HF BertConfig fields (+ id2label/label2id and `bertkit_task` for task models)
  model.safetensors      tensors under HF names (BertModel, BertForPreTraining, ...ForSequenceClassification,
                         ...ForTokenClassification, ...ForQuestionAnswering)
  vocab.txt, tokenizer_config.json
so `transformers.BertModel.from_pretrained(dir)` loads it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile

from .config import BertConfig
from .convert.checkpoint import (CheckpointError, assign_weights, collect_hf_tensors, detect_format, encoder_root,
                                 has_pretraining_heads, read_google_tensors, read_hf_tensors)
from .convert.names import head_prefixes, head_specs
from .files import write_atomically

log = logging.getLogger("bertkit")

# The HF classes of the models that are not fine-tuning tasks; each task declares its own.
ARCHITECTURES = {None: "BertModel", "pretraining": "BertForPreTraining"}
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def read_config(path: str) -> tuple[BertConfig, dict]:
    """(BertConfig, raw dict) from a directory's config.json or bert_config.json."""
    for name in ("config.json", "bert_config.json"):
        file = os.path.join(path, name)
        if os.path.exists(file):
            with open(file, encoding="utf-8") as f:
                raw = json.load(f)
            return BertConfig.from_dict(raw), raw
    raise FileNotFoundError(f"{path}: no config.json or bert_config.json")


def read_tensors(path: str, config: BertConfig) -> dict:
    """The checkpoint's tensors under HF names (Google checkpoints are renamed through the map)."""
    if detect_format(path) == "hf":
        return read_hf_tensors(path)
    from .convert.google import google_to_hf_names

    return google_to_hf_names(read_google_tensors(path), config)


def saved_task(raw_config: dict) -> str | None:
    """The task a saved directory was trained for (None for an encoder or pretraining checkpoint)."""
    if raw_config.get("bertkit_task"):
        return raw_config["bertkit_task"]
    from .tasks.task import all_tasks

    arch = (raw_config.get("architectures") or [None])[0]
    problem = raw_config.get("problem_type")
    # A HF directory: the task of its class and problem_type, else the first task of its class
    # with no problem_type of its own (a sequence classifier is "classify"). A BertModel folder is
    # an encoder, whether or not it carries sentence-transformers' files: only tasks with a head count.
    candidates = [(name, task) for name, task in all_tasks().items() if task.architecture == arch and task.head_prefix]
    return next((name for name, task in candidates if problem and task.hf_problem_type == problem),
                next((name for name, task in candidates if task.hf_problem_type is None), None))


def architecture(task: str | None) -> str:
    """The HF class name written to config.json `architectures` for a model of `task`."""
    from .tasks.task import get_task

    return ARCHITECTURES[task] if task in ARCHITECTURES else get_task(task).architecture


def saved_labels(raw_config: dict) -> list[str] | None:
    id2label = raw_config.get("id2label")
    if not id2label:
        return None
    return [id2label[str(i)] if str(i) in id2label else id2label[i] for i in range(len(id2label))]


# Fields that may differ from the checkpoint's config: none of them shapes a weight.
OVERRIDABLE = ("hidden_dropout_prob", "attention_probs_dropout_prob")


def override_config(config: BertConfig, overrides: dict | None) -> BertConfig:
    """`config` with some OVERRIDABLE fields replaced (None values are ignored); validated."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"cannot override {unknown} of a checkpoint's config; only {list(OVERRIDABLE)}")
    return dataclasses.replace(config, **overrides) if overrides else config


def load_pretrained(path: str, config: BertConfig | None = None, revision: str | None = None):
    """The encoder of any checkpoint (HF, Google or bertkit directory, or a Hub name), as a keras.Model.

    Args:
      path: a local directory, or a Hugging Face Hub repo id ("google-bert/bert-base-uncased"),
        downloaded once into huggingface_hub's cache (safetensors only; see `bertkit.hub`).
      config: the BertConfig to build (default: the directory's config.json / bert_config.json).
      revision: branch, tag or commit of a Hub repo.

    Returns:
      A `BertEncoder` (keras.Model). Called on {"input_ids", "token_type_ids", "attention_mask"},
      each int32 [batch, seq], it returns {"sequence_output": float32 [batch, seq, hidden],
      "pooled_output": float32 [batch, hidden]}. Head tensors in the checkpoint are skipped on purpose.

    Raises:
      FileNotFoundError / bertkit.hub.HubError: no such directory or Hub repo.
      CheckpointError: a tensor is missing or has the wrong shape for the config.

    Example:
      >>> encoder = bertkit.load_pretrained("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
      >>> encoder.config.hidden_size  # doctest: +SKIP
      384
    """
    from .hub import resolve_model_path
    from .model.encoder import BertEncoder

    path = resolve_model_path(path, revision)
    config = config or read_config(path)[0]
    tensors = read_tensors(path, config)
    encoder = BertEncoder(config).build_weights()
    assign_weights(encoder_root(encoder), config, None, tensors, skip_prefixes=head_prefixes())
    return encoder


def load_model(path: str, task: str | None = None, num_labels: int | None = None,
               labels: list[str] | None = None, config_overrides: dict | None = None,
               revision: str | None = None):
    """A full model from a checkpoint directory or a Hub name (`path`, `revision` as in load_pretrained).

    Args:
      path: a bertkit / HF / Google checkpoint directory, or a Hugging Face Hub name.
      task: None loads what the directory holds (a task model, else pretraining heads if present,
        else the encoder); a task name ("classify", "ner", "qa", "regression", "multilabel",
        "multiple-choice", "embedding", "pretraining") builds that model: with a head the checkpoint
        lacks, the encoder is loaded and the head freshly initialised (starting a fine-tune).
      num_labels / labels: the size (and names) of a new head; a saved task keeps its own labels.
      config_overrides: config fields that change no weight's shape (the dropout rates), as HF's
        `from_pretrained(path, hidden_dropout_prob=...)`.
      revision: branch, tag or commit of a Hub repo.

    Returns:
      A keras.Model called on the encoder's input dict (int32 [batch, seq]); task models return
      float32 logits ({"logits": [batch, num_labels]} for sequence tasks, [batch, seq, num_labels]
      for NER, {"start_logits", "end_logits"} [batch, seq] for QA). `model.labels` holds the names.

    Raises:
      FileNotFoundError / bertkit.hub.HubError: no such model; CheckpointError: missing, unused or
      mis-shaped tensors, or saved labels that differ from `labels`; ValueError: an unknown task.

    Example:
      >>> model = bertkit.load_model("sentence-transformers/all-MiniLM-L6-v2", task="classify",
      ...                            labels=["negative", "positive"])  # doctest: +SKIP
    """
    from .hub import resolve_model_path
    from .model.models import build_task_model

    path = resolve_model_path(path, revision)
    config, raw = read_config(path)
    config = override_config(config, config_overrides)
    tensors = read_tensors(path, config)
    pretraining = has_pretraining_heads(tensors)
    saved = saved_task(raw) or ("pretraining" if pretraining else None)
    task = task or saved
    if task is None:
        return load_pretrained(path, config)
    if labels is None and task == saved:
        labels = saved_labels(raw)
    if labels:
        n = len(labels)
    else:  # the task's own width without a label list (regression 1, classify 2, ...)
        from .tasks.task import get_task

        n = num_labels or (get_task(task).num_outputs(None) if task not in ARCHITECTURES else 2)
    if task == saved and labels and saved_labels(raw) and labels != saved_labels(raw):
        raise CheckpointError(f"{path}: the checkpoint's labels {saved_labels(raw)} differ from {labels}")
    if task != "pretraining":
        from .tasks.task import get_task

        model = build_task_model(task, config, num_labels=n, **get_task(task).model_options(path))
    else:
        model = build_task_model(task, config, num_labels=n)
    has_head = task == saved or (task == "pretraining" and pretraining)
    if has_head:
        assign_weights(model, config, task, tensors)
    else:
        assign_weights(encoder_root(model.encoder), config, None, tensors, skip_prefixes=head_prefixes(),
                       purpose=task)
        if head_specs(task):
            log.info("initialised a new %s head (%d outputs) on the encoder from %s", task, n, path)
    model.labels = labels
    return model


def model_task(model) -> str | None:
    """None for an encoder, "pretraining", or the task the model was built for (Task.build_model
    marks it), else the first registered task with its model class; TypeError for anything else."""
    from .model.encoder import BertEncoder
    from .model.models import BertPretrainer
    from .tasks.task import all_tasks

    if isinstance(model, BertEncoder):
        return None
    if isinstance(model, BertPretrainer):
        return "pretraining"
    if getattr(model, "bertkit_task", None):
        return model.bertkit_task
    for name, task in all_tasks().items():
        if isinstance(model, task.model_class()):
            return name
    raise TypeError(f"not a bertkit model: {type(model).__name__}")


def save_model(model, out_dir: str, tokenizer=None, tokenizer_dir: str | None = None,
               labels: list[str] | None = None, extra_config: dict | None = None) -> str:
    """Writes `model` as a Hugging Face directory that transformers and bertkit both load.

    Args:
      model: an encoder, a pretraining model or a task model (from load_model / finetune).
      out_dir: the directory (created if needed); existing files of the same names are replaced,
        each atomically (a kill mid-save leaves whole files).
      tokenizer / tokenizer_dir: the tokenizer files come from `tokenizer` (an object with
        .save(dir), e.g. bertkit's BertTokenizer) or are copied from `tokenizer_dir`; neither: none.
      labels: names of a task model's outputs (default: model.labels, else LABEL_i).
      extra_config: more keys for config.json.

    Returns:
      out_dir, holding config.json (HF BertConfig fields, `architectures`, id2label, `bertkit_task`),
      model.safetensors (HF tensor names), the tokenizer files and a task's own files (e.g.
      sentence-transformers' for an embedding model).

    Raises:
      TypeError: `model` is not a bertkit model.

    Example:
      >>> name = "sentence-transformers/all-MiniLM-L6-v2"
      >>> model = bertkit.load_model(name, task="ner",
      ...                            labels=["O", "B-PER", "I-PER"])  # doctest: +SKIP
      >>> bertkit.save_model(model, "ner_start", tokenizer=bertkit.load_tokenizer(name))  # doctest: +SKIP
      'ner_start'
    """
    from safetensors.numpy import save_file

    task = model_task(model)
    config = model.config
    os.makedirs(out_dir, exist_ok=True)
    root = encoder_root(model) if task is None else model
    tensors = collect_hf_tensors(root, config, task)
    raw = config.to_hf_dict()
    raw["architectures"] = [architecture(task)]
    labels = labels or getattr(model, "labels", None)
    if task not in ARCHITECTURES:  # a fine-tuning task
        from .tasks.task import get_task

        description = get_task(task)
        if description.has_labels:
            labels = labels or [f"LABEL_{i}" for i in range(model.num_labels)]
        raw.update(description.hf_config(labels))
        raw["bertkit_task"] = task
    raw.update(extra_config or {})

    def write_config(path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(raw, f, indent=2, sort_keys=True)
            f.write("\n")

    # Fine-tuning rewrites this directory at each better epoch; a kill mid-save must leave whole
    # files (the resumed run redoes the save). Weights go last, after the files that describe them.
    if tokenizer is not None or tokenizer_dir is not None:
        with tempfile.TemporaryDirectory(dir=out_dir) as staging:
            if tokenizer is not None:
                tokenizer.save(staging)
            else:
                copy_tokenizer_files(tokenizer_dir, staging)
            for name in os.listdir(staging):
                os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    write_atomically(os.path.join(out_dir, "config.json"), write_config)
    write_atomically(os.path.join(out_dir, "model.safetensors"),
                     lambda path: save_file(tensors, path, metadata={"format": "pt"}))
    if task not in ARCHITECTURES:
        description.write_model_files(model, out_dir, raw)
    return out_dir


def copy_tokenizer_files(src: str, dst: str) -> None:
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    if not os.path.exists(os.path.join(src, "vocab.txt")):
        raise FileNotFoundError(f"{src}: no vocab.txt to copy")
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
