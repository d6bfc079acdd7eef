"""Multi-label classification (GoEmotions): the reader on the real files and their CSV quoting, the
threshold search, and a fine-tuned model that transformers, the export and both runtimes reproduce."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertkit.metrics.multilabel import THRESHOLD_GRID, multilabel_metrics, tune_label_thresholds, tune_threshold
from bertkit.tasks import TASKS, evaluate, predict
from tests.tasks.test_tasks import run_cli

OPTIONS = {"quoting": "csv", "header": False, "label_column": 1}


def test_reads_the_real_goemotions_files(shared_data):
    names = shared_data / "goemotions" / "emotions.txt"
    task = TASKS["multilabel"](**OPTIONS, label_names=str(names))
    train = task.read(str(shared_data / "goemotions" / "train.tsv"), train=True)
    labels = task.labels_from(train)
    assert len(train) == 43410 and len(labels) == 28 and labels[0] == "admiration" and labels[27] == "neutral"
    targets = task.featurize(train[:2000], _tokenizer(), labels)["labels"]
    all_targets = np.stack([_multi_hot(e, labels) for e in train])
    assert int(all_targets.sum()) == 51103 and int((all_targets.sum(1) > 1).sum()) == 7102
    np.testing.assert_array_equal(targets, all_targets[:2000])
    quoted = [e for e in train if '"' in e.text]
    assert len(quoted) == 1097 and not any(e.text.startswith('"') and e.text.endswith('"') and '""' in e.text
                                           for e in quoted)  # CSV quoting undone


def _tokenizer():
    from tests.conftest import minilm_dir

    from bertkit.tokenizer import load_tokenizer

    return load_tokenizer(minilm_dir())


def _multi_hot(example, labels):
    row = np.zeros(len(labels), np.float32)
    for name in example.label.split(","):
        row[labels.index(name)] = 1
    return row


def test_bad_label_cells_name_the_line(tmp_path, shared_data):
    names = shared_data / "goemotions" / "emotions.txt"
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine\t0,15\tid1\nnot fine\t0,99\tid2\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: label '99' is neither an id below 28"):
        TASKS["multilabel"](**OPTIONS, label_names=str(names)).read(str(bad))
    empty = tmp_path / "empty.tsv"
    empty.write_text("fine\t0\tid1\nnothing\t\tid2\n")
    with pytest.raises(ValueError, match=r"empty.tsv:2: the label cell '' is not a comma-separated list"):
        TASKS["multilabel"](**OPTIONS).read(str(empty))


def test_threshold_search_finds_the_best_micro_f1():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = rng.random((400, 6)) < 0.2
    p = np.clip(y * 0.35 + rng.random((400, 6)) * 0.6, 0, 1)
    t = tune_threshold(y, p)
    scores = {float(c): f1_score(y, p >= c, average="micro") for c in THRESHOLD_GRID}
    assert scores[t] == max(scores.values())
    per_label = tune_label_thresholds(y, p, t)
    for j, tj in enumerate(per_label):
        best = max(f1_score(y[:, j], p[:, j] >= c) for c in THRESHOLD_GRID)
        assert f1_score(y[:, j], p[:, j] >= tj) == pytest.approx(best)
    got = multilabel_metrics(y, p >= t, label_names=list("abcdef"))
    assert got["micro_f1"] == pytest.approx(f1_score(y, p >= t, average="micro"))
    assert got["per_label"]["c"]["f1"] == pytest.approx(f1_score(y[:, 2], p[:, 2] >= t))


@pytest.fixture(scope="module")
def emotions_model(tiny_dir, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("emotions")
    lines = (shared_data / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines()
    (root / "train.tsv").write_text("\n".join(lines[:160]) + "\n", encoding="utf-8")
    dev = (shared_data / "goemotions" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    (root / "dev.tsv").write_text("\n".join(dev[:80]) + "\n", encoding="utf-8")
    out = root / "model"
    run_cli("finetune", "multilabel", "--model", tiny_dir, "--train", root / "train.tsv", "--dev", root / "dev.tsv",
            "--out", out, "--max-steps", 4, "--batch-size", 16, "--learning-rate", 1e-3, "--no-xla",
            "--quoting", "csv", "--no-header", "--label-column", 1,
            "--label-names", shared_data / "goemotions" / "emotions.txt", "--per-label-threshold")
    texts = [row.split("\t")[0] for row in dev[80:100] if '"' not in row]
    return out, root, texts


def test_saved_model_loads_in_transformers_and_predicts_by_the_tuned_thresholds(emotions_model, shared_data):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out, _, texts = emotions_model
    raw = json.loads((out / "config.json").read_text())
    names = (shared_data / "goemotions" / "emotions.txt").read_text().split("\n")
    assert raw["problem_type"] == "multi_label_classification" and raw["bertkit_task"] == "multilabel"
    assert [raw["id2label"][str(i)] for i in range(28)] == names
    options = raw["bertkit_task_options"]
    assert options["threshold"] in [float(t) for t in THRESHOLD_GRID] and len(options["thresholds"]) == 28
    assert "label_names" not in options and "quoting" not in options  # about the data file only
    hf = transformers.BertForSequenceClassification.from_pretrained(str(out)).eval()
    assert hf.config.problem_type == "multi_label_classification" and hf.config.num_labels == 28
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(out))
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        probs = torch.sigmoid(hf(**enc).logits).numpy()
    thresholds = np.array(options["thresholds"])
    for runtime in ("tensorflow", "tflite"):
        records = predict(str(out), texts, TASKS, runtime=runtime)
        np.testing.assert_allclose([r["probabilities"] for r in records], probs, atol=2e-6)
        near = np.abs(probs - thresholds).min(axis=1) > 1e-5  # rows no rounding can flip
        assert [r["labels"] for r, keep in zip(records, near) if keep] == \
            [[names[j] for j in np.flatnonzero(row >= thresholds)] for row, keep in zip(probs, near) if keep]


def test_evaluate_and_export_use_the_saved_thresholds(emotions_model, shared_data, tmp_path):
    from bertkit.export import export_model
    from bertkit.export.runtime import Predictor

    out, root, texts = emotions_model
    # The cells hold ids: evaluate maps them through the model's own label list.
    metrics = evaluate(str(out), str(root / "dev.tsv"), TASKS, quoting="csv", header=False, label_column=1)
    assert set(metrics) >= {"micro_f1", "macro_f1", "exact_match", "per_label"} and len(metrics["per_label"]) == 28
    history = json.loads((out / "history.json").read_text())
    assert any("eval_micro_f1" in r for r in history)
    predictor = Predictor.load(export_model(str(out), str(tmp_path / "export")))
    assert predictor.kind == "multilabel"
    served = predictor.run("texts", texts)
    want = predict(str(out), texts, TASKS, runtime="tensorflow")
    np.testing.assert_allclose([r["probabilities"] for r in served], [r["probabilities"] for r in want], atol=2e-6)
    assert [r["labels"] for r in served] == [r["labels"] for r in want]
