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
