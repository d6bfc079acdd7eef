"""GLUE's classification metrics and class balance: the positive class's F1 (MRPC / QQP), MCC
(CoLA), per-class scores and the confusion matrix against scikit-learn on a real MRPC model's
predictions; `--metric` choosing the best epoch; `--class-weights` read and refused as it should."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from bertkit.data.classification import read_class_weights
from bertkit.metrics.classification import classification_metrics
from bertkit.tasks import TASKS, FinetuneOptions, finetune, predict
from tests.tasks.test_tasks import run_cli

MRPC = ["--text-column", "#1 String", "--text-pair-column", "#2 String", "--label-column", "Quality", "--header"]


@pytest.fixture(scope="module")
def mrpc(shared_data, tmp_path_factory):
    """120 MRPC training pairs, 60 dev pairs (the real files, BOM and all)."""
    d = tmp_path_factory.mktemp("mrpc")
    for split, n in (("train", 121), ("dev", 61)):
        lines = (shared_data / "mrpc" / f"{split}.tsv").read_text(encoding="utf-8-sig").splitlines()[:n]
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def mrpc_model(tiny_dir, mrpc, tmp_path_factory):
    out = tmp_path_factory.mktemp("mrpc_model") / "model"
    run_cli("finetune", "classify", "--model", tiny_dir, "--train", mrpc / "train.tsv", "--dev", mrpc / "dev.tsv",
            "--out", out, "--epochs", 2, "--batch-size", 16, "--learning-rate", 1e-3, "--max-length", 48,
            "--metric", "f1", *MRPC)
    return out


def test_metrics_are_scikit_learns_with_the_positive_class_f1():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 408)  # MRPC dev's size
    y_pred = np.where(rng.random(408) < 0.8, y_true, 1 - y_true)
    got = classification_metrics(y_true, y_pred, label_names=["0", "1"])
    assert got["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))  # GLUE: pos_label=1
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))
    report = skm.classification_report(y_true, y_pred, output_dict=True)
    for name in ("0", "1"):
        want = {"precision": report[name]["precision"], "recall": report[name]["recall"],
                "f1": report[name]["f1-score"], "support": report[name]["support"]}
        assert got["per_class"][name] == pytest.approx(want, abs=1e-12)
    three = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2], label_names=["a", "b", "c"])
    assert "f1" not in three and three["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_metric_picks_the_epoch_and_evaluate_writes_the_report(mrpc_model, mrpc, tmp_path):
    history = json.loads((mrpc_model / "history.json").read_text())
    epochs = [r for r in history if r.get("epoch_end")]
    assert len(epochs) == 2 and all({"eval_f1", "eval_mcc", "eval_per_class"} <= set(r) for r in epochs)
    best = max(epochs, key=lambda r: r["eval_f1"])

    out = subprocess.run([sys.executable, "-m", "bertkit", "evaluate", "--model", str(mrpc_model), "--data",
                          str(mrpc / "dev.tsv"), "--report-dir", str(tmp_path / "report"), "--runtime", "tensorflow",
                          *MRPC], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    *table, last = out.stdout.strip().splitlines()
    scores = json.loads(last)
    assert scores["f1"] == pytest.approx(best["eval_f1"], abs=1e-6)  # the saved model is the best-F1 epoch
    assert any(line.split()[:1] == ["0"] for line in table) and any("mcc" in line for line in table)

    rows = (mrpc / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    gold = [int(r.split("\t")[0]) for r in rows]
    lines = [f"{r.split(chr(9))[3]}\t{r.split(chr(9))[4]}" for r in rows]
    predicted = [int(p["label"]) for p in predict(str(mrpc_model), lines, TASKS, runtime="tensorflow")]
    assert scores["f1"] == pytest.approx(skm.f1_score(gold, predicted))
    assert scores["mcc"] == pytest.approx(skm.matthews_corrcoef(gold, predicted))
    matrix = json.loads((tmp_path / "report" / "confusion_matrix.json").read_text())
    assert matrix == {"labels": ["0", "1"], "matrix": skm.confusion_matrix(gold, predicted, labels=[0, 1]).tolist()}
    assert (tmp_path / "report" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == scores


def test_bad_metric_and_class_weights_fail_before_training(tiny_dir, data, tmp_path):
    with pytest.raises(ValueError, match=r"--metric f1: classify picks the best epoch by one of accuracy, "
                                         r"macro_f1, mcc$"):  # three labels: no positive class
        three = tmp_path / "three.tsv"
        three.write_text("".join(f"text {i}\t{'abc'[i % 3]}\n" for i in range(12)), encoding="utf-8")
        finetune(TASKS["classify"](), str(tiny_dir), str(three), str(tmp_path / "y"), dev_file=str(three),
                 options=FinetuneOptions(max_steps=1, batch_size=4, progress=False, metric="f1"))
    with pytest.raises(ValueError, match="--metric mse: regression picks the best epoch by one of pearson, spearman"):
        finetune(TASKS["regression"](delimiter="tab", header=False, text_column=5, text_pair_column=6, label_column=4),
                 str(tiny_dir), str(data / "stsb.csv"), str(tmp_path / "z"), dev_file=str(data / "stsb.csv"),
                 options=FinetuneOptions(max_steps=1, batch_size=4, progress=False, metric="mse"))
    with pytest.raises(ValueError, match="--metric accuracy needs a dev file"):
        finetune(TASKS["classify"](), str(tiny_dir), str(data / "train.tsv"), str(tmp_path / "w"),
                 options=FinetuneOptions(max_steps=1, batch_size=4, progress=False, metric="accuracy"))
    with pytest.raises(ValueError, match="--class-weights applies to classify .*not regression"):
        TASKS["regression"](class_weights="balanced")


def test_class_weight_files_and_balanced(tmp_path, data):
    labels = ["neg", "pos"]
    good = tmp_path / "w.json"
    good.write_text('{"neg": 2, "pos": 0.5}')
    assert read_class_weights(str(good), labels) == {"neg": 2.0, "pos": 0.5}
    for text, message in (("neg\t2\n", r"w.tsv: no weight for the label\(s\) \['pos'\]"),
                          ("neg\t2\npos\tlots\n", r"w.tsv:2: the weight of 'pos' must be a positive number, got 'lots'"),
                          ("neg\t2\npos\t0\n", r"w.tsv:2: the weight of 'pos' must be a positive number"),
                          ("neg\t2\nneutral\t1\n", r"w.tsv:2: label 'neutral' is not in the training data's labels"),
                          ("neg 2\n", r"w.tsv:1: expected 'label<TAB>weight'")):
        bad = tmp_path / "w.tsv"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            read_class_weights(str(bad), labels)
    task = TASKS["classify"](class_weights="balanced")
    examples = task.read(str(data / "train.tsv"), train=True)
    counts = {label: sum(e.label == label for e in examples) for label in ("0", "1")}
    assert task.class_weight == pytest.approx({k: len(examples) / (2 * n) for k, n in counts.items()})
    assert task.label_keys == ("labels", "weight") and TASKS["classify"].label_keys == ("labels",)
