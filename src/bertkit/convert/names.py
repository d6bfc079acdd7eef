"""The one declarative name map between bertkit variables and checkpoint tensors.

Each row says: which bertkit variable (an attribute path into the model's parts), which tensor
name it has in a Hugging Face checkpoint and in an original google-research/bert TF1 checkpoint,
and how the array must be transformed on the way in (the same transform undoes itself on the way
out). Keras kernels are [in, out]; PyTorch Linear weights are [out, in]; Google stores kernels as
[in, out] like Keras, except the NSP weight `cls/seq_relationship/output_weights` which is [2, H].
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from ..config import BertConfig

# Tensors that are present in real checkpoints and skipped on purpose.
HF_SKIPPED = (
    "embeddings.position_ids",  # a constant buffer (arange), not a weight
)
# The MLM decoder weight is the tied word-embedding table and its bias aliases cls.predictions.bias:
# both are checked for equality with the tensor they alias, then skipped.
HF_ALIASES = {
    "cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
GOOGLE_SKIPPED_SUFFIXES = ("/adam_m", "/adam_v", "global_step", "good_steps", "loss_scale")

TRANSPOSE = "transpose"
PRETRAINING_HEAD_PREFIX = "cls."
MLM_HEAD_PREFIX = "cls.predictions."
# The masked-LM head without NSP or pooler (HF's BertForMaskedLM), as `head_specs` names it.
MASKED_LM = "masked-lm"
# Model parts a checkpoint may lack (HF's BertForMaskedLM and token-task models save no pooler);
# they keep their initial values, as transformers does, with a warning.
OPTIONAL_PATHS = ("encoder.pooler.",)


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """One variable: `path` into the model parts, its HF and Google names, and the transforms."""

    path: str
    hf: str
    google: str | None
    hf_transform: str | None = None
    google_transform: str | None = None


def _dense(path: str, hf: str, google: str) -> list[WeightSpec]:
    return [
        WeightSpec(f"{path}.kernel", f"{hf}.weight", f"{google}/kernel", hf_transform=TRANSPOSE),
        WeightSpec(f"{path}.bias", f"{hf}.bias", f"{google}/bias"),
    ]


def _layer_norm(path: str, hf: str, google: str) -> list[WeightSpec]:
    return [
        WeightSpec(f"{path}.gamma", f"{hf}.weight", f"{google}/gamma"),
        WeightSpec(f"{path}.beta", f"{hf}.bias", f"{google}/beta"),
    ]


def encoder_specs(config: BertConfig, pooler: bool = True) -> list[WeightSpec]:
    """Rows for the encoder. HF names are given without the `bert.` prefix. Token-level task models
    (HF BertForTokenClassification / QuestionAnswering) have no pooler."""
    e, g = "encoder.embeddings", "bert/embeddings"
    specs = [
        WeightSpec(f"{e}.word_embeddings", "embeddings.word_embeddings.weight", f"{g}/word_embeddings"),
        WeightSpec(f"{e}.position_embeddings", "embeddings.position_embeddings.weight",
                   f"{g}/position_embeddings"),
        WeightSpec(f"{e}.token_type_embeddings", "embeddings.token_type_embeddings.weight",
                   f"{g}/token_type_embeddings"),
        *_layer_norm(f"{e}.layer_norm", "embeddings.LayerNorm", f"{g}/LayerNorm"),
    ]
    for i in range(config.num_hidden_layers):
        p, h, g = f"encoder.blocks.{i}", f"encoder.layer.{i}", f"bert/encoder/layer_{i}"
        specs += [
            *_dense(f"{p}.attention.query", f"{h}.attention.self.query", f"{g}/attention/self/query"),
            *_dense(f"{p}.attention.key", f"{h}.attention.self.key", f"{g}/attention/self/key"),
            *_dense(f"{p}.attention.value", f"{h}.attention.self.value", f"{g}/attention/self/value"),
            *_dense(f"{p}.attention.output_dense", f"{h}.attention.output.dense",
                    f"{g}/attention/output/dense"),
            *_layer_norm(f"{p}.attention.layer_norm", f"{h}.attention.output.LayerNorm",
                         f"{g}/attention/output/LayerNorm"),
            *_dense(f"{p}.feed_forward.intermediate", f"{h}.intermediate.dense",
                    f"{g}/intermediate/dense"),
            *_dense(f"{p}.feed_forward.output_dense", f"{h}.output.dense", f"{g}/output/dense"),
            *_layer_norm(f"{p}.feed_forward.layer_norm", f"{h}.output.LayerNorm",
                         f"{g}/output/LayerNorm"),
        ]
    if pooler:
        specs += _dense("encoder.pooler.dense", "pooler.dense", "bert/pooler/dense")
    return specs


def head_specs(task: str | None) -> list[WeightSpec]:
    """Rows for a model's head(s). Task heads have no Google name (google-research saved them
    under per-script names); pretraining heads have both."""
    mlm = [
        *_dense("mlm.transform", "cls.predictions.transform.dense", "cls/predictions/transform/dense"),
        *_layer_norm("mlm.layer_norm", "cls.predictions.transform.LayerNorm", "cls/predictions/transform/LayerNorm"),
        WeightSpec("mlm.output_bias", "cls.predictions.bias", "cls/predictions/output_bias"),
    ]
    if task == MASKED_LM:  # HF's BertForMaskedLM: the MLM head alone (fill-mask reads it)
        return mlm
    if task == "pretraining":
        return [
            *mlm,
            WeightSpec("nsp.dense.kernel", "cls.seq_relationship.weight",
                       "cls/seq_relationship/output_weights", hf_transform=TRANSPOSE,
                       google_transform=TRANSPOSE),
            WeightSpec("nsp.dense.bias", "cls.seq_relationship.bias", "cls/seq_relationship/output_bias"),
        ]
    if task is None:
        return []
    prefix = _task(task).head_prefix  # a fine-tuning task's one Dense head, under its HF prefix
    if not prefix:  # a task without a head (embedding)
        return []
    return [
        WeightSpec("head.dense.kernel", f"{prefix}weight", None, hf_transform=TRANSPOSE),
        WeightSpec("head.dense.bias", f"{prefix}bias", None),
    ]


def head_prefixes() -> tuple[str, ...]:
    """The HF name prefixes of every head: pretraining's and each registered task's."""
    from ..tasks.task import all_tasks

    return tuple(dict.fromkeys([PRETRAINING_HEAD_PREFIX, *(t.head_prefix for t in all_tasks().values() if t.head_prefix)]))


def uses_pooler(task: str | None) -> bool:
    """Whether a model for `task` reads (so trains and saves) the pooler: the encoder and the
    pretraining heads do; token-level task heads do not, as in HF."""
    return task in (None, "pretraining") or (task != MASKED_LM and _task(task).uses_pooler)


def _task(name: str):
    from ..tasks.task import get_task

    return get_task(name)


def all_specs(config: BertConfig, task: str | None) -> Iterator[WeightSpec]:
    yield from encoder_specs(config, pooler=uses_pooler(task))
    yield from head_specs(task)


def resolve(root, path: str):
    """The variable at an attribute path like 'encoder.blocks.3.attention.query.kernel'."""
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj
