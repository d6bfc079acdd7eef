"""Edge-sized batches through every exported SavedModel: an empty batch, one empty string, a text of
only control characters, whitespace, and a text longer than max_length give outputs of the right
shape (and the empty batch zero rows), never an error from inside the graph."""

import pytest
import tensorflow as tf

LONG = " ".join(["word"] * 400)
BATCHES = {"empty": [], "one empty": [""], "control only": ["\x01\x02\x7f\u200b"], "whitespace": ["  \t "],
           "mixed": ["", "a short text", LONG]}


def signature(exports, kind):
    return tf.saved_model.load(exports[kind]).signatures["serving_default"]


def rows_of(outputs: dict) -> set:
    return {int(v.shape[0]) for v in outputs.values()}


@pytest.mark.parametrize("kind", ["classify", "ner", "encoder", "preprocessor"])
def test_text_exports_take_edge_batches(exports, kind):
    fn = signature(exports, kind)
    for name, texts in BATCHES.items():
        out = fn(text=tf.constant(texts, tf.string))
        assert rows_of(out) == {len(texts)}, (kind, name, {k: v.shape for k, v in out.items()})
        if kind == "classify":
            assert out["probabilities"].shape[1] == 2
            if texts:
                assert tf.reduce_all(tf.abs(tf.reduce_sum(out["probabilities"], -1) - 1) < 1e-5)
        if kind == "encoder" and texts:
            assert out["sentence_embedding"].shape == (len(texts), 32)


def test_qa_export_takes_edge_batches(exports):
    fn = signature(exports, "qa")
    cases = {"empty": ([], []), "empty strings": ([""], [""]), "control only": (["\x01"], ["\x02\x03"]),
             "long": (["what word?"], [LONG])}
    for name, (questions, contexts) in cases.items():
        out = fn(question=tf.constant(questions, tf.string), context=tf.constant(contexts, tf.string))
        assert rows_of(out) == {len(questions)}, (name, {k: v.shape for k, v in out.items()})
