"""Regression (STS-B): the reader on the real files and their quirks, the metrics against numpy,
and a fine-tuned model whose outputs transformers, the export and both runtimes reproduce."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from bertkit.data.classification import GLUE_COLUMNS
from bertkit.metrics.regression import regression_metrics
from bertkit.tasks import TASKS, evaluate, predict
from tests.tasks.test_tasks import run_cli

STSB = dict(GLUE_COLUMNS["stsb"])
FLAGS = ["--delimiter", "tab", "--no-header", "--text-column", "5", "--text-pair-column", "6", "--label-column", "4"]


def test_reads_the_real_stsb_files(shared_data, caplog):
    task = TASKS["regression"](**STSB)
    with caplog.at_level(logging.WARNING, logger="bertkit.data"):
        train = task.read(str(shared_data / "stsb" / "sts-train.csv"), train=True)
    dev = task.read(str(shared_data / "stsb" / "sts-dev.csv"))
    assert (len(train), len(dev)) == (5749, 1500)  # csv quoting would give 5,711 and 1,470
    assert "197 rows have more than the first row's 7 fields" in caplog.text
    assert train[0].text == "A plane is taking off." and train[0].text_pair == "An air plane is taking off."
    scores = np.array([float(e.label) for e in train])
    assert scores.min() == 0.0 and scores.max() == 5.0 and abs(scores.mean() - 2.70) < 0.01
    assert task.labels_from(train) is None


def test_bad_scores_and_ragged_rows_name_the_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\t1.5\nc\td\thigh\n")
    task = TASKS["regression"](text_column=0, text_pair_column=1, label_column=2, header=False)
    with pytest.raises(ValueError, match=r"bad.tsv:2: the score 'high' is not a number"):
        task.read(str(bad))
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("a\tb\t1.5\nc\td\t2\textra\n")
    with pytest.raises(ValueError, match=r"ragged.tsv:2: expected 3 columns, found 4"):
        TASKS["regression"](text_column=0, text_pair_column=1, label_column=-1, header=False).read(str(ragged))


def test_metrics_match_numpy():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 5, 300)
    p = y + rng.normal(0, 1.0, 300)
    got = regression_metrics(y, p)
    assert got["pearson"] == pytest.approx(np.corrcoef(y, p)[0, 1], abs=1e-12)
    ranks = [np.argsort(np.argsort(v)) for v in (y, p)]  # no ties in continuous draws
    assert got["spearman"] == pytest.approx(np.corrcoef(*ranks)[0, 1], abs=1e-12)
    assert got["mse"] == pytest.approx(np.mean((y - p) ** 2))
    assert regression_metrics([1.0, 2.0], [3.0, 3.0])["pearson"] == 0.0  # undefined -> 0, not nan


@pytest.fixture(scope="module")
def stsb_model(tiny_dir, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("stsb")
    lines = (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8").splitlines()
    (root / "train.csv").write_text("\n".join(lines[:64]) + "\n", encoding="utf-8")
    dev = (shared_data / "stsb" / "sts-dev.csv").read_text(encoding="utf-8").splitlines()
    (root / "dev.csv").write_text("\n".join(dev[:40]) + "\n", encoding="utf-8")
    out = root / "model"
    run_cli("finetune", "regression", "--model", tiny_dir, "--train", root / "train.csv", "--dev", root / "dev.csv",
            "--out", out, "--max-steps", 4, "--batch-size", 16, "--learning-rate", 1e-3, "--no-xla", *FLAGS)
    return out, root


def test_finetuned_model_loads_in_transformers_with_the_same_scores(stsb_model):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out, root = stsb_model
    raw = json.loads((out / "config.json").read_text())
    assert raw["problem_type"] == "regression" and raw["bertkit_task"] == "regression"
    hf = transformers.BertForSequenceClassification.from_pretrained(str(out)).eval()
    assert hf.config.num_labels == 1 and hf.config.problem_type == "regression"
    tokenizer = transformers.BertTokenizerFast.from_pretrained(str(out))
    pairs = [line.split("\t")[5:7] for line in (root / "dev.csv").read_text(encoding="utf-8").splitlines()]
    with torch.no_grad():
        enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True,
                        max_length=128, return_tensors="pt")
        want = hf(**enc).logits[:, 0].numpy()
    lines = [f"{a}\t{b}" for a, b in pairs]
    for runtime in ("tensorflow", "tflite"):
        got = np.array([r["score"] for r in predict(str(out), lines, TASKS, runtime=runtime)])
        np.testing.assert_allclose(got, want, atol=2e-6)
    # The pairs' scores spread 20x the tolerance: the comparison tells pairs apart.
    assert np.ptp(want) > 4e-5


def test_evaluate_scores_with_scipy(stsb_model):
    from scipy import stats

    from bertkit.tasks.inference import load_for_inference, run_model

    out, root = stsb_model
    got = evaluate(str(out), str(root / "dev.csv"), TASKS, **STSB)
    rows = (root / "dev.csv").read_text(encoding="utf-8").splitlines()
    gold = [float(line.split("\t")[4]) for line in rows]  # read here, not by bertkit's reader
    loaded = load_for_inference(str(out), TASKS)
    lines = ["\t".join(line.split("\t")[5:7]) for line in rows]
    features = loaded.task.featurize(loaded.task.examples_from_lines(lines), loaded.tokenizer, None)
    scores = run_model(loaded.forward, features, per_token=False)["logits"][:, 0]  # unrounded, line order
    assert got["pearson"] == pytest.approx(stats.pearsonr(gold, scores).statistic, abs=1e-6)  # gold as float32 in bertkit
    assert got["spearman"] == pytest.approx(stats.spearmanr(gold, scores).statistic, abs=1e-6)  # gold as float32 in bertkit
    history = json.loads((out / "history.json").read_text())
    assert any("eval_pearson" in r for r in history)


def test_export_serves_the_same_scores(stsb_model, tmp_path):
    from bertkit.export import export_model
    from bertkit.export.runtime import Predictor

    out, root = stsb_model
    export_dir = export_model(str(out), str(tmp_path / "export"))
    predictor = Predictor.load(export_dir)
    assert predictor.kind == "regression" and predictor.input_kinds == ("texts", "pairs")
    pairs = [tuple(line.split("\t")[5:7]) for line in (root / "dev.csv").read_text(encoding="utf-8").splitlines()][:8]
    served = [r["score"] for r in predictor.run("pairs", pairs)]
    want = [r["score"] for r in predict(str(out), ["\t".join(p) for p in pairs], TASKS, runtime="tensorflow")]
    np.testing.assert_allclose(served, want, atol=1e-5)
