"""Property sweep (hypothesis) through the exported SavedModels: random Unicode batches (blank,
control-only and separator-laden texts among them) of random size give one output row per text,
and row i equals what text i gets alone (padding to the batch's longest text changes nothing)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TEXT = st.one_of(st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
                 st.sampled_from(["", " ", "\t", "\u2028", "\x1c", "\x85", "\x00", "a " * 60]))
SWEEP = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_SIGNATURES: dict = {}


def signature(exports, kind):
    if kind not in _SIGNATURES:
        _SIGNATURES[kind] = tf.saved_model.load(exports[kind]).signatures["serving_default"]
    return _SIGNATURES[kind]


def assert_row_equals_alone(row: np.ndarray, alone: np.ndarray, where: str):
    """`row` may be longer than `alone` along its first axis (padded to the batch's longest text): string
    padding must be empty; numbers at padded positions (e.g. the encoder's sequence output) mean nothing."""
    row, alone = np.asarray(row), np.asarray(alone)
    if alone.ndim:
        head, tail = row[:alone.shape[0]], row[alone.shape[0]:]
        assert alone.dtype.kind not in "OS" or (tail == b"").all(), where
    else:
        head = row
    if alone.dtype.kind in "OSUiub":
        np.testing.assert_array_equal(head, alone, err_msg=where)
    else:
        np.testing.assert_allclose(head, alone, atol=1e-5, err_msg=where)


@pytest.mark.parametrize("kind", ["classify", "ner", "encoder", "preprocessor"])
@SWEEP
@given(texts=st.lists(TEXT, max_size=6))
def test_text_exports_keep_rows_aligned(exports, kind, texts):
    fn = signature(exports, kind)
    batch = {k: v.numpy() for k, v in fn(text=tf.constant(texts, tf.string)).items()}
    for name, value in batch.items():
        assert value.shape[0] == len(texts), (kind, name, value.shape)
    for i, text in enumerate(texts):
        alone = {k: v.numpy()[0] for k, v in fn(text=tf.constant([text], tf.string)).items()}
        for name in batch:
            assert_row_equals_alone(batch[name][i], alone[name], f"{kind} {name} row {i} {text!r}")


@SWEEP
@given(pairs=st.lists(st.tuples(TEXT, TEXT), max_size=4))
def test_qa_export_keeps_rows_aligned(exports, pairs):
    fn = signature(exports, "qa")
    questions, contexts = [q for q, _ in pairs], [c for _, c in pairs]
    batch = {k: v.numpy() for k, v in fn(question=tf.constant(questions, tf.string),
                                         context=tf.constant(contexts, tf.string)).items()}
    for name, value in batch.items():
        assert value.shape[0] == len(pairs), (name, value.shape)
    for i, (question, context) in enumerate(pairs):
        alone = {k: v.numpy()[0] for k, v in fn(question=tf.constant([question], tf.string),
                                                 context=tf.constant([context], tf.string)).items()}
        for name in batch:
            assert_row_equals_alone(batch[name][i], alone[name], f"qa {name} row {i}")
