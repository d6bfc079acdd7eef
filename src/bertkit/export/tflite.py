"""TFLite conversion of a sequence classifier (encoder + head) on token ids.

The tokenizer stays outside: tensorflow-text's WordPiece and regex ops are not TFLite builtins, so
the app tokenizes (e.g. with the preprocessor export's vocab, or bertkit's Python tokenizer) and
feeds int32 [1, seq_length] `input_ids`, `token_type_ids`, `attention_mask` (padded with 0).
Outputs: `logits` and `probabilities` [1, labels]. Builtin ops only (no Flex delegate needed).

    path = export_tflite("runs/sst2", "sst2.tflite", seq_length=128)
"""

from __future__ import annotations

import tensorflow as tf


def export_tflite(model_dir: str, path: str, seq_length: int | None = None) -> str:
    from ..pretrained import load_model, model_task
    from . import DEFAULT_SEQ_LENGTH

    model = load_model(model_dir)
    if model_task(model) != "classify":
        raise ValueError(f"{model_dir}: TFLite export supports sequence classifiers only")
    seq_length = model.config.fit_length(seq_length, DEFAULT_SEQ_LENGTH, "--seq-length", model_dir)
    names = ("input_ids", "token_type_ids", "attention_mask")
    specs = [tf.TensorSpec([1, seq_length], tf.int32, name=n) for n in names]

    @tf.function(input_signature=specs, autograph=False)
    def classify(input_ids, token_type_ids, attention_mask):
        logits = model({"input_ids": input_ids, "token_type_ids": token_type_ids,
                        "attention_mask": attention_mask}, training=False)["logits"]
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    # The converter freezes the variables it finds by tracking; a Keras 3 model hides the
    # encoder blocks' variables from tracking (see modules.py), so hand it all of them.
    holder = tf.Module()
    holder.model_variables = [v.value for v in model.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([classify.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path
