"""SQuAD 2.0 fine-tuning on the real file: unanswerable questions train on [CLS], the null
threshold is searched on dev as the official script's best_f1_thresh and saved with the model,
and evaluate / the export answer with it."""

from __future__ import annotations

import json

import pytest

from bertkit.data.squad import answers_by_id
from bertkit.metrics.squad import squad_v2_metrics
from bertkit.tasks import TASKS, evaluate
from bertkit.tasks.inference import load_for_inference, run_model
from tests.tasks.test_tasks import run_cli


@pytest.fixture(scope="module")
def squad2_files(shared_data, tmp_path_factory):
    data = json.loads((shared_data / "squad2" / "dev-v2.0-cs224n.articles00-09_13.json").read_text())
    d = tmp_path_factory.mktemp("squad2")
    train, dev = data["data"][0], data["data"][1]
    train = {**train, "paragraphs": train["paragraphs"][:8]}
    dev = {**dev, "paragraphs": dev["paragraphs"][:3]}
    for name, article in (("train", train), ("dev", dev)):
        (d / f"{name}.json").write_text(json.dumps({"version": "v2.0", "data": [article]}))
    return d


def test_null_threshold_is_tuned_on_dev_and_saved(tiny_dir, squad2_files, tmp_path):
    out = tmp_path / "qa2"
    run_cli("finetune", "qa", "--model", tiny_dir, "--train", squad2_files / "train.json", "--dev",
            squad2_files / "dev.json", "--out", out, "--max-steps", 4, "--batch-size", 8, "--max-length", 96,
            "--doc-stride", 48, "--learning-rate", 1e-3)
    options = json.loads((out / "config.json").read_text())["bertkit_task_options"]
    assert options["version_2"] is True

    scores = evaluate(str(out), str(squad2_files / "dev.json"), TASKS, runtime="tensorflow")
    assert {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(scores)
    assert options["null_score_diff_threshold"] == pytest.approx(scores["best_f1_thresh"])
    # The saved threshold gives the best F1 (the metric can only count more: a span that normalises
    # to "" is an answer to the search and no answer to the metric, as in the official script).
    assert scores["f1"] >= scores["best_f1"] - 1e-9

    # The same threshold from the raw outputs, and answers that follow it.
    loaded = load_for_inference(str(out), TASKS, runtime="tensorflow")
    examples = loaded.task.read(str(squad2_files / "dev.json"))
    features = loaded.task.featurize(examples, loaded.tokenizer, None)
    outputs = run_model(loaded.forward, features, True)
    spans = loaded.task.answers(examples, features, outputs, null_score_diff_threshold=float("inf"))
    threshold = options["null_score_diff_threshold"]
    want = {q: r["answer"] if r["start"] >= 0 and r["null_score"] - r["score"] <= threshold else ""
            for q, r in spans.items()}
    assert squad_v2_metrics(answers_by_id(examples), want)["f1"] == pytest.approx(scores["f1"])
