"""Export -> load in a fresh interpreter (tensorflow + tensorflow_text only) -> same predictions as
bertkit's Python path, on real inputs from ../shared/data, for every task, the encoder and the
preprocessor (HF `test_export_for_inference`, done across processes)."""

from __future__ import annotations

import numpy as np
import pytest

from bertkit.tasks import TASKS, predict

from .conftest import TASK_OPTIONS


@pytest.fixture(scope="module")
def python_predictions(tiny_models, real_inputs) -> dict:
    """`bertkit predict` (the Python path) on the real inputs, computed once."""
    return {"classify": predict(tiny_models["classify"], real_inputs["texts"], TASKS),
            "pair": predict(tiny_models["classify"], [f"{a}\t{b}" for a, b in real_inputs["pairs"]], TASKS),
            "ner": _python_ner(tiny_models["ner"], real_inputs["ner"]),
            "qa": _python_qa(tiny_models["qa"], real_inputs["questions"], real_inputs["contexts"])}


def test_fresh_interpreter_imports_no_bertkit(fresh):
    assert not [m for m in fresh["modules"] if m.startswith("bertkit")]


def test_classify_matches_python(python_predictions, fresh):
    want = python_predictions["classify"]
    got = fresh["results"]["classify"]
    assert got["label"] == [w["label"] for w in want]
    diff = np.abs(np.array(got["probabilities"]) - np.array([w["probabilities"] for w in want]))
    assert diff.max() <= 1e-5
    assert np.allclose(np.sum(got["probabilities"], axis=1), 1.0, atol=1e-6)


def test_token_ids_signature_matches_python(python_predictions, fresh):
    want = python_predictions["classify"]
    got = fresh["results"]["classify_ids"]
    assert got["label"] == [w["label"] for w in want]
    assert np.abs(np.array(got["probabilities"]) - np.array([w["probabilities"] for w in want])).max() <= 1e-5


def test_pair_classify_matches_python(python_predictions, fresh):
    want = python_predictions["pair"]
    got = fresh["results"]["pair"]
    assert got["label"] == [w["label"] for w in want]
    assert np.abs(np.array(got["probabilities"]) - np.array([w["probabilities"] for w in want])).max() <= 1e-5


def _python_ner(model_dir, lines):
    """bertkit's NER predictions: word tags and the `bertkit predict` entity dicts."""
    from bertkit.data.ner import split_words
    from bertkit.tasks.inference import load_for_inference, run_model

    loaded = load_for_inference(model_dir, TASKS)
    task, labels = loaded.task, loaded.labels
    examples = task.examples_from_lines(lines)
    features = task.featurize(examples, loaded.tokenizer, None)
    outputs = run_model(loaded.forward, features, per_token=True)
    tags = task.predicted_tags(examples, features, outputs, labels)
    return ([split_words(line) for line in lines], tags,
            task.format_predictions(examples, features, outputs, labels))


def test_ner_matches_python(python_predictions, real_inputs, fresh):
    lines = real_inputs["ner"]
    words, tags, want = python_predictions["ner"]
    got = fresh["results"]["ner"]
    long_sentences = 0
    for i, line in enumerate(lines):
        n = got["num_words"][i]
        assert [(w, s, e) for w, s, e in zip(got["words"][i], got["word_starts"][i], got["word_ends"][i])][:n] \
            == words[i], line
        assert got["tags"][i][:n] == tags[i], line
        k = got["num_entities"][i]
        entities = [{"type": t, "start": s, "end": e, "text": x} for t, s, e, x in
                    zip(got["entity_types"][i], got["entity_starts"][i], got["entity_ends"][i], got["entity_texts"][i])]
        assert entities[:k] == want[i]["entities"], line
        long_sentences += len(line.split()) > TASK_OPTIONS["ner"]["max_length"] - 2
    assert long_sentences > 5  # windows over long sentences were exercised
    assert sum(got["num_entities"]) > 50


def _python_qa(model_dir, questions, contexts):
    """bertkit's SQuAD featurizer, batched forward pass and n-best post-processing (the path of
    `bertkit predict`), with the full answer records (probability, null score) kept."""
    from bertkit.tasks.inference import load_for_inference, run_model

    loaded = load_for_inference(model_dir, TASKS)
    task = loaded.task
    examples = task.examples_from_lines([f"{q}\t{c}" for q, c in zip(questions, contexts)])
    features = task.featurize(examples, loaded.tokenizer, None)
    outputs = run_model(loaded.forward, features, per_token=True)
    return task.answers(examples, features, outputs), features


def test_qa_matches_python(python_predictions, real_inputs, fresh):
    want, features = python_predictions["qa"]
    got = fresh["results"]["qa"]
    for i, question in enumerate(real_inputs["questions"]):
        w = want[str(i)]
        assert (got["answer"][i], got["start"][i], got["end"][i]) == (w["answer"], w["start"], w["end"]), question
        assert got["score"][i] == pytest.approx(w["score"], abs=1e-5)
        assert got["probability"][i] == pytest.approx(w["probability"], abs=1e-5)
        assert got["null_score"][i] == pytest.approx(w["null_score"], abs=1e-5)
    assert len(features["input_ids"]) > 2 * len(real_inputs["questions"])  # many windows per context


def test_encoder_matches_python(tiny_models, real_inputs, fresh):
    from bertkit.pretrained import load_pretrained
    from bertkit.tokenizer import load_tokenizer

    texts = real_inputs["texts"]
    encodings = load_tokenizer(tiny_models["classify"]).encode_batch(texts, max_length=64, padding="longest")
    inputs = {"input_ids": np.array([e.ids for e in encodings], np.int32),
              "token_type_ids": np.array([e.type_ids for e in encodings], np.int32),
              "attention_mask": np.array([e.attention_mask for e in encodings], np.int32)}
    outputs = load_pretrained(tiny_models["classify"])(inputs)
    sequence, mask = outputs["sequence_output"].numpy(), inputs["attention_mask"]
    got = fresh["results"]["encoder"]
    assert np.array_equal(np.array(got["input_mask"]), mask)
    assert np.abs(np.array(got["sequence_output"]) - sequence)[mask.astype(bool)].max() <= 1e-5
    assert np.abs(np.array(got["pooled_output"]) - outputs["pooled_output"].numpy()).max() <= 1e-5
    mean = (sequence * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    assert np.abs(np.array(got["sentence_embedding"]) - mean).max() <= 1e-5


def test_preprocessor_matches_python_tokenizer(tiny_models, real_inputs, fresh):
    from bertkit.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_models["classify"])
    pairs = real_inputs["pairs"]
    for name, encodings in (
            ("preprocessor", tokenizer.encode_batch(real_inputs["texts"], max_length=48, padding="max_length")),
            ("preprocessor_pair", tokenizer.encode_batch([a for a, _ in pairs], [b for _, b in pairs],
                                                         max_length=48, padding="max_length"))):
        got = fresh["results"][name]
        assert got["input_word_ids"] == [e.ids for e in encodings]
        assert got["input_type_ids"] == [e.type_ids for e in encodings]
        assert got["input_mask"] == [e.attention_mask for e in encodings]


def _as_signature_outputs(result: dict) -> dict:
    """Fresh-process JSON back to what a signature returns (strings as bytes)."""
    out = {}
    for key, value in result.items():
        array = np.array(value)
        if array.dtype.kind == "U":
            array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
        out[key] = array
    return out


def test_server_results_have_the_shapes_of_bertkit_predict(python_predictions, real_inputs, fresh):
    """`Task.format_served` (what `bertkit serve` returns) formats the signature outputs as `bertkit predict`."""
    from bertkit.tasks import TASKS

    texts, lines = real_inputs["texts"], real_inputs["ner"]
    got = TASKS["classify"].format_served(_as_signature_outputs(fresh["results"]["classify"]), len(texts), None)
    want = python_predictions["classify"]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g["probabilities"], w["probabilities"])) <= 2e-6
    assert TASKS["ner"].format_served(_as_signature_outputs(fresh["results"]["ner"]), len(lines), None) == \
        python_predictions["ner"][2]
    got = TASKS["qa"].format_served(_as_signature_outputs(fresh["results"]["qa"]), len(real_inputs["questions"]), None)
    want, _ = python_predictions["qa"]
    assert [(g["answer"], g["start"], g["end"]) for g in got] == \
        [(want[str(i)]["answer"], want[str(i)]["start"], want[str(i)]["end"]) for i in range(len(got))]
    assert all(abs(g["score"] - want[str(i)]["score"]) <= 1e-4 for i, g in enumerate(got))
