"""Reading checkpoint tensors (HF safetensors, Google TF1) into bertkit models, and writing them out.

Loading is strict: every source tensor must be used or deliberately skipped, every model variable
must be filled, and every shape must match; otherwise the error names the tensors.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import types

import numpy as np

from ..config import BertConfig
from .names import (GOOGLE_SKIPPED_SUFFIXES, HF_ALIASES, HF_SKIPPED, OPTIONAL_PATHS, PRETRAINING_HEAD_PREFIX,
                    TRANSPOSE, all_specs, head_prefixes, head_specs, resolve, uses_pooler)

log = logging.getLogger("bertkit")
# Large HF checkpoints are split into model-0000N-of-0000M.safetensors listed by this index.
SHARD_INDEX = "model.safetensors.index.json"


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: missing, unused or mis-shaped tensors."""


def detect_format(path: str) -> str:
    """'hf' for a directory with model.safetensors, 'google' for one with bert_model.ckpt.*."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: not a directory")
    if os.path.exists(os.path.join(path, "model.safetensors")) or os.path.exists(os.path.join(path, SHARD_INDEX)):
        return "hf"
    if glob.glob(os.path.join(path, "*.ckpt.index")) or glob.glob(os.path.join(path, "*.ckpt*.index")):
        return "google"
    if os.path.exists(os.path.join(path, "pytorch_model.bin")):
        raise CheckpointError(
            f"{path}: only pytorch_model.bin found; bertkit reads safetensors only (it never unpickles). "
            "Convert it with transformers: model.save_pretrained(dir, safe_serialization=True)")
    raise CheckpointError(
        f"{path}: no model.safetensors (Hugging Face) or bert_model.ckpt.index (Google) found")


def read_hf_tensors(path: str) -> dict[str, np.ndarray]:
    """All tensors of a HF directory's model.safetensors (or the shards its
    model.safetensors.index.json lists), `bert.` prefix stripped, as numpy arrays."""
    from safetensors.numpy import load_file

    if os.path.exists(os.path.join(path, "model.safetensors")):
        raw = load_file(os.path.join(path, "model.safetensors"))
    else:
        index = os.path.join(path, SHARD_INDEX)
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f).get("weight_map", {}).values()))
        missing = [s for s in shards if not os.path.exists(os.path.join(path, s))]
        if not shards or missing:
            raise CheckpointError(f"{index}: shards missing: {missing or 'the weight_map is empty'}")
        raw = {name: value for shard in shards for name, value in load_file(os.path.join(path, shard)).items()}
    tensors = {}
    for name, value in raw.items():
        key = name[len("bert."):] if name.startswith("bert.") else name
        tensors[key] = value
    return tensors


def google_checkpoint_prefix(path: str) -> str:
    for candidate in ("bert_model.ckpt",):
        if os.path.exists(os.path.join(path, candidate + ".index")):
            return os.path.join(path, candidate)
    found = sorted(glob.glob(os.path.join(path, "*.ckpt*.index")))
    if not found:
        raise CheckpointError(f"{path}: no TF1 checkpoint (*.ckpt.index) found")
    return found[-1][: -len(".index")]


def read_google_tensors(path: str) -> dict[str, np.ndarray]:
    """All non-optimizer tensors of an original google-research/bert TF1 checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(google_checkpoint_prefix(path))
    tensors = {}
    for name in reader.get_variable_to_shape_map():
        if name.endswith(GOOGLE_SKIPPED_SUFFIXES) or "AdamWeightDecayOptimizer" in name:
            continue
        tensors[name] = reader.get_tensor(name)
    return tensors


def has_pretraining_heads(tensors: dict[str, np.ndarray]) -> bool:
    """Whether the (HF-named) tensors carry the MLM/NSP heads (`cls.*`)."""
    return any(k.startswith(PRETRAINING_HEAD_PREFIX) for k in tensors)


def _apply(transform: str | None, value: np.ndarray) -> np.ndarray:
    return value.T if transform == TRANSPOSE else value


def _check_aliases(tensors: dict[str, np.ndarray]) -> None:
    for alias, target in HF_ALIASES.items():
        if alias in tensors and target in tensors:
            if not np.array_equal(tensors[alias], tensors[target]):
                raise CheckpointError(
                    f"{alias} differs from {target}; bertkit ties them (as BERT does) and cannot load "
                    "an untied copy")


def assign_weights(root, config: BertConfig, task: str | None, tensors: dict[str, np.ndarray],
                   skip_prefixes: tuple[str, ...] = (), purpose: str | None = None) -> list[str]:
    """Fills the variables of `root` (an object with .encoder and the task's head attributes).

    `tensors` uses HF names (without the bert. prefix) and HF layouts; a Google checkpoint is
    renamed to them once, as it is read (`convert.google.google_to_hf_names`). Tensors whose
    name starts with one of `skip_prefixes` are left alone on purpose (e.g. the pretraining heads
    when only the encoder is wanted). Returns the names of those deliberately skipped.
    Variables under `OPTIONAL_PATHS` (the pooler) may be missing: they keep their initial values,
    and a warning says so, naming whether `purpose` (the task the model is for, default `task`)
    reads them. Any other missing, unused or mis-shaped tensor is a CheckpointError.
    """
    _check_aliases(tensors)
    specs = list(all_specs(config, task))
    used, missing, mismatched, fresh = set(), [], [], []
    for spec in specs:
        name = spec.hf
        if name not in tensors:
            if spec.path.startswith(OPTIONAL_PATHS):
                fresh.append(name or spec.path)
                continue
            missing.append(name)
            continue
        value = _apply(spec.hf_transform, tensors[name])
        variable = resolve(root, spec.path)
        if tuple(variable.shape) != tuple(value.shape):
            mismatched.append(f"{name} -> {spec.path}: checkpoint {tuple(value.shape)} "
                              f"(after transform), model {tuple(variable.shape)}")
            continue
        used.add(name)
        variable.assign(value.astype(np.float32))
    optional_used = [spec for spec in specs if spec.path.startswith(OPTIONAL_PATHS) and spec.hf in used]
    if fresh and optional_used:  # an optional part is absent as a whole or present as a whole
        missing += fresh
        fresh = []
    if mismatched:
        raise CheckpointError("shape mismatch between checkpoint and config:\n  " + "\n  ".join(mismatched))
    skipped = set(HF_SKIPPED) | set(HF_ALIASES)
    leftover = sorted(k for k in tensors if k not in used and k not in skipped)
    deliberate = [k for k in leftover if k.startswith(skip_prefixes)]
    unused = [k for k in leftover if not k.startswith(skip_prefixes)]
    if missing or unused:
        lines = []
        if missing:
            lines.append(f"missing from the checkpoint ({len(missing)}): " + ", ".join(missing[:20]))
        if unused:
            lines.append(f"unused checkpoint tensors ({len(unused)}): " + ", ".join(unused[:20]))
        raise CheckpointError("checkpoint does not match the model:\n  " + "\n  ".join(lines))
    if fresh:
        # HF does the same (BertForMaskedLM checkpoints have no pooler); said on stderr, as HF says it.
        log.warning("the checkpoint has no %s; %s", ", ".join(fresh),
                    "initialised fresh (the classifier reads the pooled output, so fine-tune before use)"
                    if uses_pooler(purpose or task) else "left at its initial values (this task does not use the pooler)")
    log.info("restored %d tensors; skipped on purpose: %s", len(used),
             ", ".join(deliberate) or "none")
    return deliberate


def collect_hf_tensors(root, config: BertConfig, task: str | None) -> dict[str, np.ndarray]:
    """The model's variables under HF names (with the `bert.` prefix when a head is present)."""
    prefix = "bert." if head_specs(task) else ""
    out = {}
    for spec in all_specs(config, task):
        value = np.asarray(resolve(root, spec.path).numpy(), dtype=np.float32)
        name = spec.hf if spec.hf.startswith(head_prefixes()) else prefix + spec.hf
        out[name] = np.ascontiguousarray(_apply(spec.hf_transform, value))
    return out


def encoder_root(encoder) -> types.SimpleNamespace:
    return types.SimpleNamespace(encoder=encoder)

