"""Original google-research/bert TF1 checkpoints: renamed to HF names through the one name map as
they are read (as transformers' `load_tf_weights_in_bert` does), so the loader knows one naming;
and written back (for tests and for users who need the old format)."""

from __future__ import annotations

import numpy as np

from ..config import BertConfig
from .names import TRANSPOSE, all_specs


def _convert(value: np.ndarray, from_transform: str | None, to_transform: str | None) -> np.ndarray:
    # Both transforms map to the Keras layout; TRANSPOSE is its own inverse. A view, not a copy:
    # the loader transposes HF kernels back to Keras' [in, out], which gives the Google array itself.
    flips = (from_transform == TRANSPOSE) != (to_transform == TRANSPOSE)
    return value.T if flips else value


def google_to_hf_names(tensors: dict[str, np.ndarray], config: BertConfig) -> dict[str, np.ndarray]:
    """Google-named tensors -> HF-named tensors in HF layout. Unknown names are kept as they are, so
    the strict loader reports them as unused."""
    out = dict(tensors)
    for spec in all_specs(config, "pretraining"):
        if spec.google in out:
            value = out.pop(spec.google)
            out[spec.hf] = _convert(value, spec.google_transform, spec.hf_transform)
    return out


def hf_to_google_names(tensors: dict[str, np.ndarray], config: BertConfig) -> dict[str, np.ndarray]:
    """HF-named tensors (no `bert.` prefix) -> Google names and layout (encoder + pretraining heads)."""
    out = {}
    for spec in all_specs(config, "pretraining"):
        if spec.hf in tensors:
            out[spec.google] = _convert(tensors[spec.hf], spec.hf_transform, spec.google_transform)
    return out


def write_google_checkpoint(tensors: dict[str, np.ndarray], prefix: str) -> None:
    """Writes Google-named tensors as a TF1 checkpoint (`prefix`.index / .data-*), with the
    tf.compat.v1 Saver as google-research/bert did."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(v, name=k) for k, v in tensors.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False)
