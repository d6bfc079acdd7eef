"""`bertkit pretrain` end to end on a tiny config, and its up-front input checks."""

import json

import pytest

from bertkit.cli import main as cli
from tests.tasks.test_tasks import run_cli


@pytest.fixture(scope="module")
def corpus(shared_data):
    return [str(shared_data / "pretrain" / "bert_sample_text.txt"),
            str(shared_data / "pretrain" / "gutenberg" / "blake-poems.txt")]


@pytest.fixture(scope="module")
def vocab(shared_data):
    return str(shared_data / "vocab" / "bert-base-uncased")


def test_pretrain_tiny_lowers_loss_then_resumes_and_saves(corpus, vocab, tmp_path):
    out = tmp_path / "run"
    args = ["pretrain", "--corpus", *corpus, "--vocab", vocab, "--config", "tiny", "--steps", 40,
            "--batch-size", 16, "--learning-rate", 1e-3, "--out", out, "--checkpoint-every", 20, "--max-length", 64]
    printed = run_cli(*args)
    history = [r for r in json.loads((out / "history.json").read_text()) if "loss" in r]
    assert history[-1]["loss"] < history[0]["loss"] - 0.5
    assert {"mlm_accuracy", "nsp_accuracy", "mlm_loss", "nsp_loss"} <= set(history[-1])
    assert (out / "training.png").stat().st_size > 1000 and list((out / "logs").iterdir())
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["hidden_size"] == 128
    assert "saved the pretrained model" in printed
    # same command again: the run is complete, it resumes at step 40 and trains no further
    again = run_cli(*args)
    assert "resumed from checkpoint at step 40" in again
    # a fresh run from the pretrained model says so
    init = run_cli("pretrain", "--data", out / "data", "--vocab", vocab, "--config", "tiny", "--steps", 2,
                   "--batch-size", 8, "--out", tmp_path / "init", "--model", out)
    assert f"initialised from {out}" in init


@pytest.mark.parametrize("case,message", [
    ("empty", "empty"),
    ("one_sentence", "single sentence"),
    ("max_length", "max_position_embeddings"),
    ("config_vocab", "vocab_size"),
    ("masked_lm_prob", "masked-lm-prob"),
])
def test_bad_inputs_fail_before_training(case, message, corpus, vocab, tmp_path, capsys):
    args = ["pretrain", "--vocab", vocab, "--config", "tiny", "--steps", "2", "--out", str(tmp_path / "out")]
    if case == "empty":
        (tmp_path / "empty.txt").write_text("\n\n")
        args += ["--corpus", str(tmp_path / "empty.txt")]
    elif case == "one_sentence":  # one document is a corpus (its halves), one sentence is not
        (tmp_path / "one.txt").write_text("Only one sentence here.\n")
        args += ["--corpus", str(tmp_path / "one.txt")]
    elif case == "max_length":
        args += ["--corpus", *corpus, "--max-length", "1024"]
    elif case == "masked_lm_prob":
        args += ["--corpus", *corpus, "--masked-lm-prob", "1.5"]
    else:
        (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 1000, "hidden_size": 64,
                                                         "num_hidden_layers": 1, "num_attention_heads": 1}))
        args = [a if a != "tiny" else str(tmp_path / "config.json") for a in args] + ["--corpus", *corpus]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert message in err.lower() or message in err, err
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_masking_options_reach_the_data_and_guard_reuse(corpus, vocab, tmp_path):
    from bertkit.data.records import METADATA_FILE

    out = tmp_path / "run"
    args = ["pretrain", "--corpus", *corpus, "--vocab", vocab, "--config", "tiny", "--steps", 1, "--batch-size", 4,
            "--max-length", 32, "--out", out, "--no-xla", "--dupe-factor", 1]
    run_cli(*args, "--masked-lm-prob", 0.3, "--short-seq-prob", 0.2)
    meta = json.loads((out / "data" / METADATA_FILE).read_text())
    assert meta["masked_lm_prob"] == 0.3 and meta["short_seq_prob"] == 0.2
    with pytest.raises(ValueError, match="other settings"):  # the data in OUT was made with 0.3
        from bertkit.cli import build_parser
        parsed = build_parser().parse_args([str(a) for a in args] + ["--masked-lm-prob", "0.15"])
        parsed.func(parsed)


def test_one_hard_wrapped_book_is_a_corpus(vocab, tmp_path, caplog):
    """The most common first corpus: one book, wrapped at 60 columns, paragraphs between blank lines."""
    import logging
    import textwrap

    paragraphs = [" ".join(f"The traveller reached town number {p * 10 + s} before the evening rain began."
                           for s in range(6)) for p in range(8)]
    book = tmp_path / "one_book.txt"
    book.write_text("\n\n".join(textwrap.fill(p, 60) for p in paragraphs) + "\n")
    with caplog.at_level(logging.WARNING):
        printed = run_cli("pretrain", "--corpus", book, "--vocab", vocab, "--config", "tiny", "--steps", 2,
                          "--batch-size", 4, "--max-length", 32, "--out", tmp_path / "m", "--no-xla")
    assert "saved the pretrained model" in printed
    assert "single document" in caplog.text
