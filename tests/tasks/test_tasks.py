"""Fine-tuning end to end on tiny models: the loss goes down, the saved directory is a HF model
with the same predictions, evaluate/predict print what the CLI promises."""

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

from bertkit import load_model
from bertkit.cli import main as cli

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def run_cli(*args) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli([str(a) for a in args]) == 0
    return buf.getvalue()


def train_losses(out):
    history = json.loads((out / "history.json").read_text())
    return [r["loss"] for r in history if "loss" in r]


@pytest.mark.parametrize("task,train,dev,extra", [
    ("classify", "train.tsv", "dev.tsv", []),
    ("ner", "train.conll", "dev.conll", []),
    ("qa", "squad.json", "squad.json", ["--max-length", 128, "--doc-stride", 64]),
])
def test_finetune_lowers_loss_and_saves_hf_model(task, train, dev, extra, tiny_dir, data, tmp_path):
    out = tmp_path / task
    printed = run_cli("finetune", task, "--model", tiny_dir, "--train", data / train, "--dev", data / dev,
                      "--out", out, "--epochs", 3, "--batch-size", 8, "--learning-rate", 1e-3, "--no-xla", *extra)
    metrics = json.loads(printed.strip().splitlines()[-1])
    losses = train_losses(out)
    assert losses[-1] < losses[0], losses
    expected = {"classify": {"accuracy", "macro_f1", "mcc"}, "ner": {"precision", "recall", "f1"},
                "qa": {"exact_match", "f1"}}[task]
    assert expected <= set(metrics)
    evaluated = json.loads(run_cli("evaluate", "--model", out, "--data", data / dev, *extra).strip().splitlines()[-1])
    per_class = evaluated.pop("per_class", {})
    assert per_class.keys() == metrics.get("per_class", {}).keys()
    for name, scores in metrics.pop("per_class", {}).items():
        assert per_class[name] == pytest.approx(scores)
    assert evaluated == pytest.approx(metrics)
    check_transformers_agrees(task, out)


def check_transformers_agrees(task, out):
    cls = {"classify": transformers.BertForSequenceClassification, "ner": transformers.BertForTokenClassification,
           "qa": transformers.BertForQuestionAnswering}[task]
    hf = cls.from_pretrained(str(out)).eval()
    ours = load_model(str(out))
    ids = np.array([[101, 7592, 2088, 1012, 102, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    batch = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask}
    with torch.no_grad():
        ref = hf(**{k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()})
    out_ = ours(batch)
    for name in out_:
        np.testing.assert_allclose(out_[name].numpy()[..., :5], getattr(ref, name).numpy()[..., :5], atol=1e-4)
    if task != "qa":
        assert hf.config.id2label == {i: label for i, label in enumerate(ours.labels)}


def test_predict_formats(tiny_dir, data, tmp_path):
    out = tmp_path / "clf"
    run_cli("finetune", "classify", "--model", tiny_dir, "--train", data / "train.tsv", "--out", out,
            "--max-steps", 2, "--batch-size", 8, "--no-xla")
    texts = tmp_path / "texts.txt"
    texts.write_text("a charming and often affecting journey\nunflinchingly bleak and desperate\n")
    rows = [json.loads(line) for line in run_cli("predict", "--model", out, texts).splitlines()]
    assert len(rows) == 2 and rows[0]["label"] in ("0", "1")
    assert abs(sum(rows[0]["probabilities"]) - 1) < 1e-4

    ner = tmp_path / "ner"
    run_cli("finetune", "ner", "--model", tiny_dir, "--train", data / "train.conll", "--out", ner,
            "--max-steps", 2, "--batch-size", 8, "--no-xla")
    texts.write_text("EU rejects German call to boycott British lamb .\n")
    row = json.loads(run_cli("predict", "--model", ner, texts).splitlines()[0])
    assert isinstance(row["entities"], list)
    for e in row["entities"]:
        assert "EU rejects German call to boycott British lamb ."[e["start"]:e["end"]] == e["text"]

    qa = tmp_path / "qa"
    run_cli("finetune", "qa", "--model", tiny_dir, "--train", data / "squad.json", "--out", qa,
            "--max-steps", 2, "--batch-size", 8, "--no-xla", "--max-length", 128)
    context = "Super Bowl 50 was an American football game played in Santa Clara, California."
    texts.write_text(f"Where was the game played?\t{context}\n")
    row = json.loads(run_cli("predict", "--model", qa, texts).splitlines()[0])
    assert context[row["start"]:row["end"]] == row["answer"] and "score" in row


def test_bad_inputs_are_clear_errors(tiny_dir, data, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\t1\nextra\tcolumn\there\n")
    assert cli(["finetune", "classify", "--model", str(tiny_dir), "--train", str(bad), "--out",
                str(tmp_path / "x"), "--no-xla"]) == 2
    assert "bad.tsv:3" in capsys.readouterr().err
    assert cli(["evaluate", "--model", str(tiny_dir), "--data", str(bad)]) == 2
    assert "not a fine-tuned bertkit model" in capsys.readouterr().err


def test_random_init_keeps_config_and_vocab_not_weights(tiny_dir, data, tmp_path):
    """--random-init is the no-pretraining baseline: same config and vocab, fresh weights."""
    init = load_model(str(tiny_dir))
    word = init.embeddings.word_embeddings.numpy()
    for flag, same in (([], True), (["--random-init"], False)):
        out = tmp_path / f"random{len(flag)}"
        run_cli("finetune", "classify", "--model", tiny_dir, "--train", data / "train.tsv", "--dev", data / "dev.tsv",
                "--out", out, "--max-steps", 1, "--batch-size", 8, "--learning-rate", 1e-9, "--no-xla", *flag)
        tuned = load_model(str(out))
        assert tuned.encoder.config == init.config
        close = np.allclose(tuned.encoder.embeddings.word_embeddings.numpy(), word, atol=1e-6)
        assert close == same
        records = json.loads((out / "history.json").read_text())
        assert any("epoch_seconds" in r for r in records)  # training time per epoch, logged with the dev metrics


def test_dropout_flags_override_the_checkpoint(tiny_dir, data, tmp_path, capsys):
    """--dropout / --attention-dropout replace the checkpoint's rates for the run (HF's
    from_pretrained(..., hidden_dropout_prob=...)); the saved config records them."""
    out = tmp_path / "nodrop"
    run_cli("finetune", "ner", "--model", tiny_dir, "--train", data / "train.conll", "--out", out,
            "--max-steps", 1, "--batch-size", 8, "--no-xla", "--dropout", 0, "--attention-dropout", 0.05)
    saved = json.loads((out / "config.json").read_text())
    assert (saved["hidden_dropout_prob"], saved["attention_probs_dropout_prob"]) == (0.0, 0.05)
    assert json.loads((tiny_dir / "config.json").read_text())["hidden_dropout_prob"] == 0.1  # the checkpoint is untouched

    out = tmp_path / "zero"
    run_cli("finetune", "classify", "--model", tiny_dir, "--train", data / "train.tsv", "--out", out,
            "--max-steps", 1, "--batch-size", 8, "--no-xla", "--dropout", 0, "--attention-dropout", 0)
    model = load_model(str(out))
    inputs = {"input_ids": np.array([[101, 2204, 2143, 102]]), "token_type_ids": np.zeros((1, 4), "int32"),
              "attention_mask": np.ones((1, 4), "int32")}
    # No dropout anywhere (classifier included): training mode is deterministic and equals inference.
    np.testing.assert_array_equal(model(inputs, training=True)["logits"], model(inputs)["logits"])

    assert cli(["finetune", "classify", "--model", str(tiny_dir), "--train", str(data / "train.tsv"),
                "--out", str(tmp_path / "bad"), "--dropout", "1.5"]) == 2
    assert "hidden_dropout_prob must be in [0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
