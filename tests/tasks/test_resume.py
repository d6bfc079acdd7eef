"""A fine-tuning run killed between an epoch's checkpoint and the end of that epoch's evaluation
and model save (the dev pass takes a while, so this is a wide window) resumes where it stopped:
that evaluation and save are redone, and the best model and the early-stopping count carry over.

The kill is an exception raised in the dev pass: what it leaves on disk (the epoch's checkpoint,
history.json as of that checkpoint, no model saved for the epoch) is what kill -9 leaves there."""

import json

import pytest

import bertkit.tasks.base as base
from bertkit import load_model
from bertkit.tasks import TASKS

STEPS_PER_EPOCH = 5  # 160 training sentences, batches of 32


class Killed(Exception):
    pass


@pytest.fixture
def run(monkeypatch, tiny_dir, data):
    """finetune(out, dev_accuracies, kill_at_dev_pass=None, **options): fine-tunes the tiny model on
    SST-2 sentences. The dev accuracies of successive evaluations come from the given list (real
    ones once it is used up); the dev pass numbered kill_at_dev_pass (counted over the test) dies.
    Returns the metrics and the dev accuracies at which the model was saved."""
    seen = {"dev_passes": 0, "kill_at": None, "accuracy": None, "saved": []}
    real_run_model, real_save = base.run_model, base.save_model

    def run_model(*args, **kwargs):
        seen["dev_passes"] += 1
        if seen["dev_passes"] == seen["kill_at"]:
            raise Killed
        return real_run_model(*args, **kwargs)

    def save_model(*args, **kwargs):
        seen["saved"].append(seen["accuracy"])
        return real_save(*args, **kwargs)

    monkeypatch.setattr(base, "run_model", run_model)
    monkeypatch.setattr(base, "save_model", save_model)

    def finetune(out, accuracies, kill_at_dev_pass=None, **options):
        task = TASKS["classify"]()
        real_score = task.score

        def score(*args):
            metrics = real_score(*args)
            if accuracies:
                metrics["accuracy"] = accuracies.pop(0)
            seen["accuracy"] = metrics["accuracy"]
            return metrics

        task.score = score
        seen.update(kill_at=kill_at_dev_pass, saved=[])
        opts = base.FinetuneOptions(batch_size=32, learning_rate=1e-4, xla=False, progress=False, **options)
        metrics = base.finetune(task, str(tiny_dir), str(data / "train.tsv"), str(out), str(data / "dev.tsv"), opts)
        return metrics, seen["saved"]

    return finetune


def epoch_records(out):
    return [r for r in json.loads((out / "history.json").read_text()) if r.get("epoch_end")]


def test_kill_in_the_last_epochs_evaluation_still_saves_the_model(run, tmp_path):
    out = tmp_path / "one_epoch"
    with pytest.raises(Killed):
        run(out, [], kill_at_dev_pass=1, epochs=1)
    assert not (out / "model.safetensors").exists()  # killed before the epoch's model was saved

    metrics, saved = run(out, [], epochs=1)  # the same command again
    assert len(saved) == 1 and (out / "model.safetensors").exists()
    [record] = epoch_records(out)
    assert record["step"] == STEPS_PER_EPOCH and record["eval_accuracy"] == metrics["accuracy"]
    assert "epoch_seconds" not in record  # this process trained no step of that epoch
    losses = [r["step"] for r in json.loads((out / "history.json").read_text()) if "loss" in r]
    assert losses == sorted(set(losses)) and max(losses) == STEPS_PER_EPOCH  # not trained twice
    assert load_model(str(out)).labels == ["0", "1"]


def test_resume_keeps_the_best_model_and_the_early_stopping_count(run, tmp_path):
    out = tmp_path / "early_stop"
    # Epoch 1 scores 0.9 and is saved; the kill comes in epoch 2's dev pass.
    with pytest.raises(Killed):
        run(out, [0.9, 0.5, 0.6], kill_at_dev_pass=2, epochs=4, patience=2)
    weights = (out / "model.safetensors").read_bytes()

    # Resumed: epoch 2 is evaluated (0.5), then epoch 3 (0.6); neither beats epoch 1's 0.9 from the
    # first process, so nothing is saved, and two epochs without gain stop the run after epoch 3.
    _, saved = run(out, [0.5, 0.6], epochs=4, patience=2)
    assert saved == []
    assert (out / "model.safetensors").read_bytes() == weights
    assert [(r["step"], r["eval_accuracy"]) for r in epoch_records(out)] == \
        [(STEPS_PER_EPOCH, 0.9), (2 * STEPS_PER_EPOCH, 0.5), (3 * STEPS_PER_EPOCH, 0.6)]
    history = json.loads((out / "history.json").read_text())
    assert history[-1] == {"step": 3 * STEPS_PER_EPOCH, "stopped_early": True}
    assert max(r["step"] for r in history) == 3 * STEPS_PER_EPOCH
