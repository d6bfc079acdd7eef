"""The scores `finetune` returns (and tunes options on) are those of the saved best epoch in fp32,
as `bertkit evaluate` computes them; an fp32 run takes them from that epoch's dev pass instead of
scoring the dev set a second time, a bf16 run scores the reloaded model once more in fp32."""

import numpy as np
import pytest

import bertkit.tasks.base as base
from bertkit import load_model
from bertkit.tasks import TASKS, evaluate
from bertkit.tasks.inference import run_model as real_run_model
from bertkit.tokenizer import load_tokenizer


@pytest.fixture
def run(monkeypatch, tiny_dir, data):
    """finetune(out, accuracies, **options) -> (metrics, dev passes, outputs each score saw): the
    dev accuracy of successive epochs comes from `accuracies` (so a chosen epoch is the best)."""
    passes = []
    monkeypatch.setattr(base, "run_model", lambda *a, **k: passes.append(real_run_model(*a, **k)) or passes[-1])

    def finetune(out, accuracies, **options):
        task = TASKS["classify"]()
        real_score, scored = task.score, []

        def score(examples, features, outputs, labels):
            scored.append(outputs)
            metrics = real_score(examples, features, outputs, labels)
            if accuracies:
                metrics["accuracy"] = accuracies.pop(0)
            return metrics

        task.score = score
        opts = base.FinetuneOptions(batch_size=32, learning_rate=1e-4, xla=False, progress=False, **options)
        metrics = base.finetune(task, str(tiny_dir), str(data / "train.tsv"), str(out), str(data / "dev.tsv"), opts)
        return metrics, passes, scored

    return finetune


def saved_model_outputs(out, data):
    task = TASKS["classify"]()
    model = load_model(str(out))
    features = task.featurize(task.read(str(data / "dev.tsv"), labels=model.labels), load_tokenizer(str(out)),
                              model.labels)
    return real_run_model(model, features, per_token=False)["logits"]


def test_fp32_run_scores_the_best_epochs_own_dev_pass(run, tmp_path, data):
    out = tmp_path / "fp32"
    metrics, passes, scored = run(out, [0.9, 0.5], epochs=2, precision="fp32")  # epoch 1 is the best
    assert len(passes) == 2  # one dev pass per epoch, none after training
    assert scored[-1] is passes[0]  # the final scores are epoch 1's outputs, not the last epoch's
    np.testing.assert_allclose(passes[0]["logits"], saved_model_outputs(out, data), rtol=0, atol=1e-6)
    assert not np.allclose(passes[1]["logits"], passes[0]["logits"], atol=1e-4)  # epoch 2 did differ
    assert metrics == evaluate(str(out), str(data / "dev.tsv"), TASKS, runtime="tensorflow", precision="fp32")


def test_bf16_run_rescores_the_saved_model_in_fp32(run, tmp_path, data):
    out = tmp_path / "bf16"
    metrics, passes, scored = run(out, [], epochs=1, precision="bf16")
    assert len(passes) == 2  # the epoch's dev pass (bf16), then the saved model's in fp32
    fp32 = saved_model_outputs(out, data)
    np.testing.assert_allclose(scored[-1]["logits"], fp32, rtol=0, atol=1e-6)
    assert np.abs(passes[0]["logits"] - fp32).max() > 1e-5  # the bf16 pass (logits ~0.01) is not reported
    assert metrics == evaluate(str(out), str(data / "dev.tsv"), TASKS, runtime="tensorflow", precision="fp32")
