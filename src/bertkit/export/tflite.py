"""TFLite conversion of a task model (encoder + head) on token ids.

Two uses share one converter:
  * `bertkit export --kind tflite`: a file for apps, inputs int32 [1, seq_length];
  * `bertkit predict`/`evaluate` on a CPU: the same model with [batch, seq] left dynamic, run by the
    TFLite interpreter, whose XNNPACK kernels are faster on CPUs than TensorFlow's (tasks/lite.py).

The tokenizer stays outside: tensorflow-text's WordPiece and regex ops are not TFLite builtins, so
the app tokenizes (e.g. with the preprocessor export's vocab, or bertkit's Python tokenizer) and
feeds int32 `input_ids`, `token_type_ids`, `attention_mask` (padded with 0). Outputs are the task
model's (`logits` for classify and ner, `start_logits`/`end_logits` for qa) in float32; the
classifier file adds `probabilities` (softmax over `logits`). Builtin ops only (no Flex delegate).

Precision "int8" is TFLite's dynamic-range quantization: the weights of every matmul are stored as
int8 (per output channel, symmetric), the activations are quantized per batch row as each matmul
runs, and everything else (embeddings' sums, LayerNorm, softmax, GELU) stays float32. The file is
~4x smaller (MiniLM: 91 -> 24 MB); speed and accuracy on real data are in docs/benchmarks.md.

    path = export_tflite("runs/sst2", "sst2.tflite", max_length=128)
"""

from __future__ import annotations

import tensorflow as tf

from ..data.common import MODEL_INPUT_KEYS
from ..tasks.lite import check_precision


def tflite_flatbuffer(model, batch_size: int | None = None, seq_length: int | None = None,
                      probabilities: bool = False, precision: str = "fp32") -> bytes:
    """The TFLite flatbuffer of a task model (bertkit.model.models).

    Args:
      model: a task model; called with `training=False`.
      batch_size, seq_length: fixed input dimensions, or None to leave the dimension dynamic (the
        interpreter then takes any [batch, seq] after `resize_tensor_input`).
      probabilities: add a `probabilities` output, softmax over the last axis of `logits`.
      precision: "fp32", or "int8" for dynamic-range int8 weights (see the module docstring).
    Returns: the serialized model (bytes); its signature `serving_default` takes the three int32
      inputs named as MODEL_INPUT_KEYS.
    Raises: tf.lite's ConverterError if the model holds an op without a TFLite builtin;
      ValueError for an unknown precision.
    """
    check_precision(precision)
    # Multiple choice takes [batch, choices, seq]; the number of choices stays dynamic.
    shape = [batch_size] + [None] * (getattr(model, "input_rank", 2) - 2) + [seq_length]
    specs = [tf.TensorSpec(shape, tf.int32, name=n) for n in MODEL_INPUT_KEYS]

    @tf.function(input_signature=specs, autograph=False)
    def serving_default(*inputs):
        outputs = dict(model(dict(zip(MODEL_INPUT_KEYS, inputs)), training=False))
        if probabilities:
            outputs["probabilities"] = tf.nn.softmax(outputs["logits"], axis=-1)
        return outputs

    # The converter freezes the variables it finds by tracking: hand it the model's tf.Variables
    # alone, as the SavedModel export does (see modules.py).
    holder = tf.Module()
    holder.model_variables = [v.value for v in model.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving_default.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
    return converter.convert()


def export_tflite(model_dir: str, path: str, max_length: int | None = None, *, precision: str = "fp32",
                  seq_length: int | None = None) -> str:
    """Writes a fine-tuned model (any task) as a .tflite file taking int32 [1, max_length] inputs
    (input_ids, token_type_ids, attention_mask); max_length (word pieces) defaults to min(128,
    the model's positions); precision "fp32" or "int8" (dynamic-range int8 weights, see the module
    docstring). Returns `path`. `seq_length` is the old name of max_length (deprecated).

    Raises ValueError for an encoder or pretraining checkpoint, a length over the positions, or an
    unknown precision."""
    from ..pretrained import load_model, model_task
    from . import DEFAULT_SEQ_LENGTH

    if seq_length is not None:
        import warnings

        warnings.warn("export_tflite(seq_length=...) is deprecated; use max_length=", DeprecationWarning, stacklevel=2)
        max_length = max_length or seq_length
    check_precision(precision)
    model = load_model(model_dir)
    task = model_task(model)
    if task in (None, "pretraining"):
        raise ValueError(f"{model_dir}: TFLite export needs a fine-tuned model, this one is {task or 'an encoder'}")
    seq_length = model.config.fit_length(max_length, DEFAULT_SEQ_LENGTH, "--max-length", model_dir)
    with open(path, "wb") as f:
        from ..tasks.task import get_task

        description = get_task(task)  # a softmax over labels for per-sequence label outputs
        f.write(tflite_flatbuffer(model, 1, seq_length,
                                  probabilities=description.has_labels and not description.per_token,
                                  precision=precision))
    return path
