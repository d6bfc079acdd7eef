"""Long documents for classify / multilabel (and regression, which shares the path): the window
featurizer against doc_spans and the plain featurizer, window pooling against numpy, the IMDB
folder-per-class reader on the real files, and a fine-tuned windowed model whose predictions the
export, both runtimes and a hand pooling of its windows' logits reproduce."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bertkit import load_tokenizer
from bertkit.data.classification import (ClassificationExample, featurize_classification, featurize_windows,
                                         pool_windows, read_classification_file)
from bertkit.data.common import doc_spans
from bertkit.tasks import TASKS, evaluate, predict
from bertkit.tasks.classify import softmax
from bertkit.tasks.inference import load_for_inference, run_model
from tests.tasks.test_tasks import run_cli


def test_windows_cover_the_text_like_doc_spans(minilm_path, shared_data):
    tokenizer = load_tokenizer(minilm_path)
    review = (shared_data / "imdb" / "train" / "pos" / "10001_10.txt").read_text(encoding="utf-8")
    examples = [ClassificationExample(review), ClassificationExample("a short one"), ClassificationExample("")]
    features = featurize_windows(examples, tokenizer, max_length=32, doc_stride=12)
    pieces = tokenizer.encode(review, add_special_tokens=False).ids
    spans = doc_spans(len(pieces), 30, 12)
    assert len(spans) > 3 and features["example_index"].tolist() == [0] * len(spans) + [1, 2]
    for row, (start, length) in zip(features["input_ids"], spans):
        assert row[:length + 2].tolist() == [tokenizer.cls_id, *pieces[start:start + length], tokenizer.sep_id]
    plain = featurize_classification(examples[1:], tokenizer, max_length=32)
    for key in ("input_ids", "token_type_ids", "attention_mask"):  # a short text: the same row as without windows
        np.testing.assert_array_equal(features[key][len(spans):], plain[key])
    with pytest.raises(ValueError, match="some examples have a text pair and some do not"):
        featurize_windows([ClassificationExample("a", "b"), ClassificationExample("c")], tokenizer, max_length=32,
                          doc_stride=12)


def test_pair_windows_keep_the_first_text_and_window_the_second(minilm_path, shared_data):
    """SQuAD's layout for any pair: `[CLS] A [SEP] window of B [SEP]`, A cut to half the room."""
    tokenizer = load_tokenizer(minilm_path)
    rows = (shared_data / "mrpc" / "dev.tsv").read_text(encoding="utf-8-sig").splitlines()[1:41]
    examples = [ClassificationExample(r.split("\t")[3], r.split("\t")[4]) for r in rows]
    review = (shared_data / "imdb" / "train" / "pos" / "10001_10.txt").read_text(encoding="utf-8")
    examples += [ClassificationExample("is this review positive?", review), ClassificationExample(review, "short"),
                 ClassificationExample("", "")]
    max_length, stride = 24, 5
    features = featurize_windows(examples, tokenizer, max_length=max_length, doc_stride=stride)
    cls, sep, row = tokenizer.cls_id, tokenizer.sep_id, 0
    for i, e in enumerate(examples):
        a = tokenizer.encode(e.text, add_special_tokens=False).ids[:(max_length - 3) // 2]
        b = tokenizer.encode(e.text_pair, add_special_tokens=False).ids
        spans = doc_spans(len(b), max_length - 3 - len(a), stride)
        for start, length in spans:
            n = len(a) + length + 3
            assert features["example_index"][row] == i
            assert features["input_ids"][row, :n].tolist() == [cls, *a, sep, *b[start:start + length], sep]
            assert features["token_type_ids"][row].tolist() == [0] * (len(a) + 2) + [1] * (length + 1) + \
                [0] * (max_length - n)
            assert features["attention_mask"][row].sum() == n
            row += 1
    assert row == len(features["example_index"]) > 3 * len(examples)
    fits = [e for e in examples if len(tokenizer.encode(e.text, e.text_pair).ids) <= max_length]
    assert fits  # a pair that fits gives the row featurize_classification gives it
    one = featurize_windows(fits, tokenizer, max_length=max_length, doc_stride=stride)
    plain = featurize_classification(fits, tokenizer, max_length=max_length)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(one[key], plain[key])


def test_pool_windows_matches_numpy():
    rng = np.random.default_rng(0)
    logits, owner = rng.normal(size=(7, 3)).astype(np.float32), np.array([0, 0, 0, 1, 2, 2, 2])
    want_mean = np.stack([logits[owner == i].mean(0) for i in range(3)])
    want_max = np.stack([logits[owner == i].max(0) for i in range(3)])
    np.testing.assert_allclose(pool_windows(logits, owner, 3, "mean"), want_mean, rtol=1e-6)
    np.testing.assert_array_equal(pool_windows(logits, owner, 3, "max"), want_max)


def test_reads_the_real_imdb_folders(shared_data, tmp_path):
    examples = read_classification_file(shared_data / "imdb" / "train")
    assert len(examples) == 25000 and sum(e.label == "pos" for e in examples) == 12500
    assert [e.source.rsplit("/", 1)[1] for e in examples[:3]] == ["0_3.txt", "1_1.txt", "2_1.txt"]  # natural order
    odd = next(e for e in examples if e.source.endswith("pos/6745_8.txt"))
    assert odd.text.count("\x08") == 4 and not odd.text.endswith("\n")
    assert sum("\t" in e.text for e in examples) == 12
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="one subfolder per class"):
        read_classification_file(tmp_path / "empty")
    (tmp_path / "bad" / "pos").mkdir(parents=True)
    (tmp_path / "bad" / "pos" / "1_9.txt").write_bytes(b"fine \xff")
    with pytest.raises(ValueError, match=r"bad/pos/1_9.txt: not valid UTF-8"):
        read_classification_file(tmp_path / "bad")


@pytest.fixture(scope="module")
def imdb_small(shared_data, tmp_path_factory):
    """40 reviews per class in the IMDB layout, and 8 more per class to score on."""
    root = tmp_path_factory.mktemp("imdb")
    for split, ids in (("train", range(40)), ("dev", range(40, 48))):
        for label in ("neg", "pos"):
            (root / split / label).mkdir(parents=True)
            source = shared_data / "imdb" / "train" / label
            for name in sorted(p.name for p in source.iterdir() if int(p.name.split("_")[0]) in ids):
                shutil.copy(source / name, root / split / label / name)
    return root


@pytest.fixture(scope="module")
def windowed(tiny_dir, imdb_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("windows") / "model"
    run_cli("finetune", "classify", "--model", tiny_dir, "--train", imdb_small / "train", "--dev", imdb_small / "dev",
            "--out", out, "--max-steps", 4, "--batch-size", 8, "--max-length", 32, "--doc-stride", 16)
    return out


def test_windowed_model_pools_its_windows(windowed, imdb_small, tmp_path):
    options = json.loads((windowed / "config.json").read_text())["bertkit_task_options"]
    assert options["doc_stride"] == 16 and options["window_pool"] == "mean"
    texts = [e.text for e in read_classification_file(imdb_small / "dev")][::4]
    tf_run = load_for_inference(str(windowed), TASKS, runtime="tensorflow")
    windows = featurize_windows([ClassificationExample(t) for t in texts], tf_run.tokenizer, max_length=32,
                                doc_stride=16)
    assert len(windows["example_index"]) > 3 * len(texts)  # real reviews take many 30-piece windows
    logits = run_model(tf_run.forward, windows, False)["logits"]
    want = softmax(np.stack([logits[windows["example_index"] == i].mean(0) for i in range(len(texts))]))
    for runtime in ("tensorflow", "tflite"):
        got = np.array([r["probabilities"] for r in predict(str(windowed), texts, TASKS, runtime=runtime)])
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=runtime)
    scores = evaluate(str(windowed), str(imdb_small / "dev"), TASKS)
    assert 0 <= scores["accuracy"] <= 1
    # --window-pool max at evaluate time overrides the saved mean
    maxed = predict_with(windowed, texts, window_pool="max")
    want_max = softmax(np.stack([logits[windows["example_index"] == i].max(0) for i in range(len(texts))]))
    np.testing.assert_allclose(maxed, want_max, atol=2e-5)

    import tensorflow as tf

    from bertkit.export import export_model

    fn = tf.saved_model.load(export_model(str(windowed), str(tmp_path / "export"))).signatures["serving_default"]
    out = fn(text=tf.constant(texts + ["", "short"]))
    np.testing.assert_allclose(out["probabilities"].numpy()[:len(texts)], want, atol=2e-5)
    assert out["probabilities"].shape == (len(texts) + 2, 2)
    assert fn(text=tf.constant([], tf.string))["probabilities"].shape == (0, 2)


def predict_with(model_dir, texts, **options):
    loaded = load_for_inference(str(model_dir), TASKS, runtime="tensorflow")
    loaded.task.options.update(options)
    examples = loaded.task.examples_from_lines(texts)
    features = loaded.task.featurize(examples, loaded.tokenizer, None)
    outputs = run_model(loaded.forward, features, False)
    return np.array([r["probabilities"] for r in loaded.task.format_predictions(examples, features, outputs,
                                                                                  loaded.labels)])


def test_pair_windows_in_both_runtimes_and_the_export(tiny_dir, data, tmp_path):
    """Regression on real STS-B pairs read in windows: predict (TensorFlow and TFLite) and the
    exported SavedModel's pair signature equal the windows' logits pooled by hand."""
    out = tmp_path / "sts"
    run_cli("finetune", "regression", "--model", tiny_dir, "--train", data / "stsb.csv", "--out", out,
            "--max-steps", 2, "--batch-size", 8, "--delimiter", "tab", "--no-header", "--text-column", 5,
            "--text-pair-column", 6, "--label-column", 4, "--max-length", 16, "--doc-stride", 4)
    loaded = load_for_inference(str(out), TASKS, runtime="tensorflow")
    rows = [r.split("\t") for r in (data / "stsb.csv").read_text(encoding="utf-8").splitlines()[:24]]
    examples = [ClassificationExample(r[5], r[6]) for r in rows]
    windows = loaded.task.featurize_texts(examples, loaded.tokenizer)
    assert len(windows["example_index"]) > len(examples) + 10 and windows["token_type_ids"].max() == 1
    raw = run_model(loaded.forward, windows, False)["logits"][:, 0]
    want = np.array([raw[windows["example_index"] == i].mean() for i in range(len(examples))])
    lines = [f"{e.text}\t{e.text_pair}" for e in examples]
    for runtime in ("tensorflow", "tflite"):
        got = [r["score"] for r in predict(str(out), lines, TASKS, runtime=runtime)]
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=runtime)

    import tensorflow as tf

    from bertkit.export import export_model

    fn = tf.saved_model.load(export_model(str(out), str(tmp_path / "export"))).signatures["serving_default"]
    served = fn(text=tf.constant([e.text for e in examples] + [""]),
                text_pair=tf.constant([e.text_pair for e in examples] + [""]))
    np.testing.assert_allclose(served["score"].numpy()[:len(examples)], want, atol=2e-5)


def test_multilabel_and_regression_read_long_texts_in_windows(tiny_dir, data, tmp_path):
    out = tmp_path / "emotions"
    run_cli("finetune", "multilabel", "--model", tiny_dir, "--train", data / "goemotions.tsv", "--out", out,
            "--max-steps", 2, "--batch-size", 8, "--quoting", "csv", "--no-header", "--label-column", 1,
            "--max-length", 8, "--doc-stride", 3)
    loaded = load_for_inference(str(out), TASKS, runtime="tensorflow")
    examples = loaded.task.read(str(data / "goemotions.tsv"), labels=loaded.labels)[:10]
    features = loaded.task.featurize(examples, loaded.tokenizer, loaded.labels)
    assert len(features["labels"]) == len(features["example_index"]) > len(examples)  # targets per window
    np.testing.assert_array_equal(features["labels"][features["example_index"] == 3],
                                  np.repeat(loaded.task.targets(examples, loaded.labels)[3:4],
                                            (features["example_index"] == 3).sum(), axis=0))
    logits = run_model(loaded.forward, features, False)["logits"]
    rows = loaded.task.format_predictions(examples, features, {"logits": logits}, loaded.labels)
    pooled = np.stack([logits[features["example_index"] == i].mean(0) for i in range(len(examples))])
    np.testing.assert_allclose([r["probabilities"] for r in rows], 1 / (1 + np.exp(-pooled)), atol=1e-5)

    scores = tmp_path / "scores.tsv"
    scores.write_text("".join(f"{e.text}\t{i % 5}.5\n" for i, e in enumerate(examples * 2)), encoding="utf-8")
    reg = tmp_path / "reg"
    run_cli("finetune", "regression", "--model", tiny_dir, "--train", scores, "--out", reg, "--max-steps", 2,
            "--batch-size", 4, "--no-header", "--max-length", 8, "--doc-stride", 3, "--window-pool", "max")
    got = predict(str(reg), [e.text for e in examples], TASKS, runtime="tensorflow")
    reg_run = load_for_inference(str(reg), TASKS, runtime="tensorflow")
    windows = reg_run.task.featurize_texts(examples, reg_run.tokenizer)
    raw = run_model(reg_run.forward, windows, False)["logits"][:, 0]
    want = [raw[windows["example_index"] == i].max() for i in range(len(examples))]
    np.testing.assert_allclose([r["score"] for r in got], want, atol=1e-5)
