"""BertTextClassifier / BertPreprocessor: Keras compile/fit on raw strings, the same weights as the
fine-tuning engine on the same batches, `.keras` and HF-layout round trips, errors."""

import os

import numpy as np
import pytest


@pytest.fixture(scope="module")
def sst2_rows(shared_data):
    rows = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:33]
    return [r.split("\t")[0] for r in rows], [r.split("\t")[1] for r in rows]


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory, minilm_path):
    """MiniLM with a classify head of labels ["0", "1"]: both paths start from these weights."""
    import bertkit

    out = tmp_path_factory.mktemp("start")
    model = bertkit.load_model(minilm_path, task="classify", labels=["0", "1"])
    bertkit.save_model(model, str(out), tokenizer_dir=minilm_path)
    return str(out)


@pytest.fixture(scope="module")
def tiny_start(tmp_path_factory, tiny_dir):
    import bertkit

    out = tmp_path_factory.mktemp("tiny_start")
    bertkit.save_model(bertkit.load_model(tiny_dir, task="classify", labels=["0", "1"]), str(out), tokenizer_dir=tiny_dir)
    return str(out)


def _weights(model):
    return {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}


def test_keras_fit_gives_the_engine_weights(tmp_path, start_dir, sst2_rows):
    """3 steps of 32 texts (one batch per epoch, so batch order cannot differ), dropout off."""
    import keras

    import bertkit
    from bertkit.tasks import TASKS, FinetuneOptions, finetune

    texts, labels = sst2_rows
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)), encoding="utf-8")
    finetune(TASKS["classify"](max_length=64), start_dir, str(train), str(tmp_path / "engine"),
             options=FinetuneOptions(epochs=3, batch_size=32, dropout=0.0, attention_dropout=0.0, progress=False))
    engine = bertkit.load_model(str(tmp_path / "engine"))

    keras.utils.set_random_seed(0)
    clf = bertkit.BertTextClassifier.from_pretrained(start_dir, max_length=64, dropout=0.0, attention_dropout=0.0)
    start = _weights(clf.task_model)
    clf.compile()
    history = clf.fit(texts, labels, batch_size=32, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and int(clf.optimizer.iterations) == 3

    ours, theirs = _weights(clf.task_model), _weights(engine)
    trained = [k for k in theirs if "pooler" not in k]
    assert set(trained) <= set(ours)
    moved = max(np.abs(theirs[k] - start[k]).max() for k in trained)
    apart = max(np.abs(theirs[k] - ours[k]).max() for k in trained)
    assert moved > 5e-5  # the updates are real (1e-4 measured) ...
    assert apart < 1e-6, apart  # ... and the two paths make the same ones (6e-8 measured)


def test_keras_and_hf_round_trips_and_inputs(tmp_path, tiny_start, sst2_rows):
    import keras
    import torch
    from transformers import BertForSequenceClassification

    import bertkit

    texts, labels = sst2_rows
    clf = bertkit.BertTextClassifier.from_pretrained(tiny_start, max_length=64)
    clf.compile(learning_rate=1e-4)
    clf.fit(texts[:16], labels[:16], batch_size=8, epochs=1, verbose=0, validation_data=(texts[16:], labels[16:]))
    logits = clf.predict(texts, verbose=0)
    assert logits.shape == (32, 2) and logits.dtype == np.float32
    np.testing.assert_allclose(np.asarray(clf(texts[:3])), logits[:3], atol=1e-5)  # strings in call too

    clf.save(tmp_path / "clf.keras")
    again = keras.saving.load_model(tmp_path / "clf.keras")
    np.testing.assert_array_equal(again.predict(texts, verbose=0), logits)
    assert again.labels == ["0", "1"] and again.preprocessor.max_length == 64

    clf.save_pretrained(str(tmp_path / "hf"))
    hf = BertForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    enc = clf.preprocessor(texts)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(np.asarray(enc["input_ids"]), dtype=torch.long),
                 attention_mask=torch.tensor(np.asarray(enc["attention_mask"]))).logits.numpy()
    np.testing.assert_allclose(logits, ref, atol=2e-5)
    reloaded = bertkit.BertTextClassifier.from_pretrained(str(tmp_path / "hf"))
    assert reloaded.preprocessor.max_length == 64 and reloaded.labels == ["0", "1"]

    pair = clf.predict((texts[:4], texts[4:8]), verbose=0)
    assert pair.shape == (4, 2)
    enc = clf.preprocessor((texts[:1], texts[4:5]))
    ids = np.asarray(enc["input_ids"])[0]
    assert list(ids).count(bertkit.load_tokenizer(tiny_start).sep_id) == 2 and np.asarray(enc["token_type_ids"]).max() == 1


def test_preprocessor_equals_the_tokenizer_and_survives_keras_serialization(tiny_start, sst2_rows):
    import keras

    import bertkit

    texts, _ = sst2_rows
    pre = bertkit.BertPreprocessor.from_pretrained(tiny_start, max_length=16)
    got = pre(texts)
    want = bertkit.load_tokenizer(tiny_start).encode_batch(texts, max_length=16, padding="longest")
    np.testing.assert_array_equal(np.asarray(got["input_ids"]), [e.ids for e in want])
    np.testing.assert_array_equal(np.asarray(got["attention_mask"]), [e.attention_mask for e in want])
    copy = keras.layers.deserialize(keras.layers.serialize(pre))
    np.testing.assert_array_equal(np.asarray(copy(texts)["input_ids"]), np.asarray(got["input_ids"]))


def test_bad_labels_and_inputs_are_clear_errors(tiny_start, sst2_rows):
    import bertkit

    texts, _ = sst2_rows
    clf = bertkit.BertTextClassifier.from_pretrained(tiny_start, max_length=32)
    clf.compile()
    with pytest.raises(ValueError, match=r"labels \['maybe'\] are not among the model's labels \['0', '1'\]"):
        clf.fit(texts[:2], ["0", "maybe"], verbose=0)
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 2\), got 0\.\.5"):
        clf.fit(texts[:2], [0, 5], verbose=0)
    with pytest.raises(ValueError, match="2 texts but 3 labels"):
        clf.fit(texts[:2], [0, 1, 1], verbose=0)
    with pytest.raises(ValueError, match="not one string"):
        clf.predict("one text")
    with pytest.raises(ValueError, match="3 labels for 2 classes"):
        bertkit.BertTextClassifier(task_model=clf.task_model, labels=["a", "b", "c"])


def _hf_logits(directory, encoded):
    import torch
    from transformers import BertForSequenceClassification

    hf = BertForSequenceClassification.from_pretrained(str(directory)).eval()
    with torch.no_grad():
        return hf, hf(input_ids=torch.tensor(np.asarray(encoded["input_ids"]), dtype=torch.long),
                      token_type_ids=torch.tensor(np.asarray(encoded["token_type_ids"]), dtype=torch.long),
                      attention_mask=torch.tensor(np.asarray(encoded["attention_mask"]))).logits.numpy()


def test_regression_on_sentence_pairs_saves_what_transformers_loads(tmp_path, tiny_dir, shared_data):
    import bertkit

    rows = [r.split("\t") for r in (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8").splitlines()[:24]]
    pairs, scores = ([r[5] for r in rows], [r[6] for r in rows]), [float(r[4]) for r in rows]
    reg = bertkit.BertTextClassifier.from_pretrained(tiny_dir, problem_type="regression", max_length=64)
    reg.compile(learning_rate=1e-4)
    history = reg.fit(pairs, scores, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "pearson"}
    predicted = reg.predict(pairs, verbose=0)
    assert predicted.shape == (24, 1)
    reg.save_pretrained(str(tmp_path / "reg"))
    hf, ref = _hf_logits(tmp_path / "reg", reg.preprocessor(pairs))
    assert hf.config.problem_type == "regression" and hf.config.num_labels == 1
    np.testing.assert_allclose(predicted, ref, atol=2e-5)
    again = bertkit.BertTextClassifier.from_pretrained(str(tmp_path / "reg"))
    assert again.problem_type == "regression"


def test_multilabel_with_label_names_saves_what_transformers_loads(tmp_path, tiny_dir, shared_data):
    import bertkit

    names = (shared_data / "goemotions" / "emotions.txt").read_text(encoding="utf-8").split()
    rows = [r.split("\t") for r in (shared_data / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines()[:24]]
    texts, label_sets = [r[0] for r in rows], [[names[int(i)] for i in r[1].split(",")] for r in rows]
    clf = bertkit.BertTextClassifier.from_pretrained(tiny_dir, problem_type="multi_label_classification",
                                                     labels=names, max_length=64)
    clf.compile(learning_rate=1e-4)
    history = clf.fit(texts, label_sets, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "label_accuracy"}
    hot = clf._label_ids(label_sets, len(texts))
    assert hot.shape == (24, 28) and hot.sum() == sum(len(s) for s in label_sets)
    np.testing.assert_array_equal(clf._label_ids(hot, len(texts)), hot)  # an array is taken as multi-hot
    with pytest.raises(ValueError, match="give multi-hot labels as a numpy array"):
        clf._label_ids([list(row) for row in hot], len(texts))  # float rows in lists: ambiguous, refused
    logits = clf.predict(texts, verbose=0)
    clf.save_pretrained(str(tmp_path / "ml"))
    hf, ref = _hf_logits(tmp_path / "ml", clf.preprocessor(texts))
    assert hf.config.problem_type == "multi_label_classification" and hf.config.id2label[0] == names[0]
    np.testing.assert_allclose(logits, ref, atol=2e-5)
    with pytest.raises(ValueError, match=r"labels \['bliss'\] are not among"):
        clf.fit(texts[:1], [["bliss"]], verbose=0)


def test_from_pretrained_and_save_pretrained_on_the_model_classes(tmp_path, tiny_start, tiny_dir):
    """HF's names on bertkit's Keras models: the encoder and each task model class."""
    from bertkit.model.encoder import BertEncoder
    from bertkit.model.models import BertForSequenceClassification, BertForTokenClassification

    ids = np.array([[101, 7592, 2088, 102]], np.int32)
    inputs = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
    encoder = BertEncoder.from_pretrained(tiny_dir)
    encoder.save_pretrained(str(tmp_path / "enc"), tokenizer_dir=tiny_dir)
    np.testing.assert_array_equal(np.asarray(BertEncoder.from_pretrained(str(tmp_path / "enc"))(inputs)["pooled_output"]),
                                  np.asarray(encoder(inputs)["pooled_output"]))

    clf = BertForSequenceClassification.from_pretrained(tiny_start)  # a saved classify model: its head and labels
    assert clf.labels == ["0", "1"] and clf.bertkit_task == "classify"
    clf.save_pretrained(str(tmp_path / "clf"), tokenizer_dir=tiny_start)
    again = BertForSequenceClassification.from_pretrained(str(tmp_path / "clf"))
    np.testing.assert_array_equal(np.asarray(again(inputs)["logits"]), np.asarray(clf(inputs)["logits"]))
    reg = BertForSequenceClassification.from_pretrained(tiny_dir, task="regression")
    assert reg.num_labels == 1 and reg.bertkit_task == "regression"
    ner = BertForTokenClassification.from_pretrained(tiny_dir, labels=["O", "B-PER", "I-PER"])
    assert ner(inputs)["logits"].shape == (1, 4, 3)
    with pytest.raises(ValueError, match="builds a BertForTokenClassification, not a BertForSequenceClassification"):
        BertForSequenceClassification.from_pretrained(tiny_dir, task="ner")
