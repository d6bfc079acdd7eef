"""The task registry: a task declared in one module plugs into the CLI, saving and loading, the
checkpoint name map and export, without editing any of them."""

from __future__ import annotations

import json

import pytest

from bertkit.cli import build_parser
from bertkit.tasks import TASKS, get_task, register
from bertkit.tasks.classify import ClassifyTask


@pytest.fixture
def topic_task():
    """A classifier registered under its own name, as a new task module would be."""

    @register
    class TopicTask(ClassifyTask):
        name = "topic"
        report_metrics = ("accuracy",)

    yield TopicTask
    del TASKS["topic"]


def test_builtin_tasks_and_unknown_names():
    assert list(TASKS)[:5] == ["classify", "regression", "multilabel", "ner", "qa"]
    with pytest.raises(ValueError, match="unknown task 'nope'; choose one of classify, regression, multilabel, ner, qa"):
        get_task("nope")


def test_two_tasks_cannot_share_a_name():
    with pytest.raises(ValueError, match="two tasks are named 'ner'"):
        @register
        class Other(ClassifyTask):
            name = "ner"


def test_a_new_task_plugs_in_everywhere(topic_task, tiny_dir, tmp_path):
    import numpy as np

    from bertkit.export import build_module
    from bertkit.model.models import build_task_model
    from bertkit.pretrained import load_model, read_config, save_model

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    finetune_task = next(a for a in sub.choices["finetune"]._actions if a.dest == "task")
    assert "topic" in finetune_task.choices

    config, _ = read_config(str(tiny_dir))
    model = build_task_model("topic", config, num_labels=3)
    out = tmp_path / "topic"
    save_model(model, str(out), tokenizer_dir=str(tiny_dir), labels=["a", "b", "c"])
    raw = json.loads((out / "config.json").read_text())
    assert raw["bertkit_task"] == "topic" and raw["architectures"] == ["BertForSequenceClassification"]
    assert raw["id2label"] == {"0": "a", "1": "b", "2": "c"}
    loaded = load_model(str(out))
    assert loaded.bertkit_task == "topic" and loaded.labels == ["a", "b", "c"]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    module = build_module(str(out))
    assert module.kind == "classify" and module.metadata()["labels"] == ["a", "b", "c"]


def test_a_task_in_one_module_runs_through_the_cli(tiny_dir, data, tmp_path, capsys):
    """A task that exists nowhere in bertkit (fastText's `__label__X text` lines, its own reader and
    its own flag), declared here as its module would declare it, trains, evaluates and predicts
    through `bertkit` commands: nothing outside this module names it."""
    from bertkit.cli import main
    from bertkit.data.classification import ClassificationExample
    from bertkit.tasks.task import MAX_LENGTH_FLAG, TaskFlag

    @register
    class FastTextTask(ClassifyTask):
        name = "fasttext"
        defaults = {**ClassifyTask.defaults, "label_prefix": "__label__"}
        flags = (MAX_LENGTH_FLAG, TaskFlag("label_prefix", "the prefix that marks a label word"))

        def iter_rows(self, path, **extra):
            prefix = self.options["label_prefix"]
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    label, _, text = line.rstrip("\n").partition(" ")
                    if not label.startswith(prefix):
                        raise ValueError(f"{path}:{number}: a line starts with its label, e.g. {prefix}pos")
                    yield ClassificationExample(text, label=label[len(prefix):], source=f"{path}:{number}")

    try:
        rows = [line.split("\t") for line in (data / "train.tsv").read_text().splitlines()[1:]]
        train = tmp_path / "train.txt"
        train.write_text("".join(f"@@{label} {text}\n" for text, label in rows))
        out = tmp_path / "model"
        args = ["finetune", "fasttext", "--model", str(tiny_dir), "--train", str(train), "--dev", str(train),
                "--out", str(out), "--max-steps", "2", "--batch-size", "16", "--label-prefix", "@@",
                "--max-length", "32", "--no-progress"]
        assert main(args) == 0
        trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert 0.0 <= trained["accuracy"] <= 1.0
        saved = json.loads((out / "config.json").read_text())
        assert saved["bertkit_task"] == "fasttext" and saved["bertkit_task_options"]["label_prefix"] == "@@"

        # evaluate reads the file with the saved prefix, and scores as the dev pass of finetune did
        assert main(["evaluate", "--model", str(out), "--data", str(train), "--no-progress"]) == 0
        evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert evaluated["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-6)

        texts = tmp_path / "texts.txt"
        texts.write_text("".join(text + "\n" for text, _ in rows[:5]))
        assert main(["predict", "--model", str(out), str(texts), "--output", str(tmp_path / "p.jsonl")]) == 0
        predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
        assert len(predictions) == 5 and {p["label"] for p in predictions} <= {"0", "1"}

        bad = tmp_path / "bad.txt"
        bad.write_text("@@1 good\nno label here\n")
        assert main(["evaluate", "--model", str(out), "--data", str(bad), "--no-progress"]) == 2
        assert f"{bad}:2: a line starts with its label" in capsys.readouterr().err
    finally:
        del TASKS["fasttext"]
