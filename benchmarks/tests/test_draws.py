"""benchmarks/bertkit_draws.py writes the head and batch order `finetune` really starts from, and
finetune_hf.py --bertkit-draws puts that head into the HF model (label rows matched by name)."""

import argparse
import json

import numpy as np
import pytest

import bertkit.data.common as common
from bertkit.tasks import TASKS, FinetuneOptions, finetune

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import bertkit_draws  # noqa: E402  (benchmarks/, on the path by conftest.py)
import finetune_hf  # noqa: E402

FILES = {"ner": "train.conll", "qa": "squad.json"}
HF_CLASSES = {"ner": "BertForTokenClassification", "qa": "BertForQuestionAnswering"}
SEED, BATCH = 3, 8


@pytest.mark.parametrize("task_name", ["ner", "qa"])
def test_draws_are_what_finetune_starts_from(task_name, tiny_dir, data, tmp_path, monkeypatch):
    train = str(data / FILES[task_name])
    draws = bertkit_draws.bertkit_draws(task_name, str(tiny_dir), train, SEED, BATCH, epochs=2)
    steps_per_epoch = draws["features"] // BATCH
    assert [len(epoch) for epoch in draws["epochs"]] == [steps_per_epoch] * 2

    orders, bucketed = [], common._bucketed_batches

    def recording(*args, **kwargs):
        batches = [[int(i) for i in b] for b in bucketed(*args, **kwargs)]
        orders.append(batches)
        return iter(np.array(b) for b in batches)

    monkeypatch.setattr(common, "_bucketed_batches", recording)
    out = tmp_path / "out"  # learning rate 0: the saved head is the initial one
    finetune(TASKS[task_name](), str(tiny_dir), train, str(out),
             options=FinetuneOptions(max_steps=2 * steps_per_epoch, batch_size=BATCH, learning_rate=0.0,
                                     weight_decay=0.0, seed=SEED, progress=False))
    assert orders[:2] == draws["epochs"]

    saved = getattr(transformers, HF_CLASSES[task_name]).from_pretrained(str(out))
    head = finetune_hf.task_head(saved)
    np.testing.assert_array_equal(head.weight.detach().numpy(), np.array(draws["head"]["weight"], np.float32))

    # The HF reference with --bertkit-draws: the same head, rows in the script's (sorted) label order.
    label_list = sorted(draws["labels"]) if draws["labels"] else None
    reference = getattr(transformers, HF_CLASSES[task_name]).from_pretrained(
        str(tiny_dir), **({"num_labels": len(label_list)} if label_list else {}))
    path = tmp_path / "draws.json"
    path.write_text(json.dumps(draws))
    args = argparse.Namespace(task=task_name, head_init="normal", bertkit_draws=str(path), epochs=2)
    assert finetune_hf.start_head(args, reference, label_list, draws["features"], steps_per_epoch) == draws["epochs"]
    ours = finetune_hf.task_head(reference)
    names = label_list or [0, 1]
    by_name = {name: i for i, name in enumerate(draws["labels"] or names)}
    for row, name in enumerate(names):
        np.testing.assert_array_equal(ours.weight.detach().numpy()[row], head.weight.detach().numpy()[by_name[name]])
    assert label_list is None or saved.config.id2label[0] == draws["labels"][0]
