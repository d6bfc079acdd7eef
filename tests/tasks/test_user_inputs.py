"""Inputs real users send (issue cases turned into tests): lengths the model cannot take fail
before any work with both numbers named; a headerless file keeps its first row; NER trains on
the file's own tags unless asked to convert."""

import json
import logging

import pytest

from bertkit import save_model
from bertkit.cli import main as cli
from bertkit.config import BertConfig
from bertkit.data.classification import read_classification_file
from bertkit.data.ner import detect_scheme, read_conll
from bertkit.model.encoder import BertEncoder
from bertkit.tasks import TASKS


@pytest.fixture(scope="module")
def short_model(tmp_path_factory, minilm_path):
    """A tiny model with only 64 positions."""
    out = tmp_path_factory.mktemp("short")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    save_model(BertEncoder(config).build_weights(), str(out), tokenizer_dir=minilm_path)
    return out


@pytest.fixture(scope="module")
def long_texts(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    words = " ".join(["word"] * 90)
    (d / "train.tsv").write_text("".join(f"{words} {i}\t{i % 2}\n" for i in range(8)))
    return d / "train.tsv"


def test_a_too_long_max_length_fails_before_any_work(short_model, long_texts, tmp_path, capsys):
    out = tmp_path / "model"
    code = cli(["finetune", "classify", "--model", str(short_model), "--train", str(long_texts), "--out", str(out),
                "--max-length", "100", "--max-steps", "1", "--no-xla"])
    err = capsys.readouterr().err
    assert code == 2 and "--max-length 100" in err and "(64)" in err and "Traceback" not in err
    assert not out.exists()  # nothing was written
    for argv in (["export", "--model", str(short_model), "--out", str(tmp_path / "e"), "--max-length", "100"],
                 ["export", "--model", str(short_model), "--out", str(tmp_path / "p"), "--kind", "preprocessor",
                  "--max-length", "65"]):
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert "exceeds the model's max_position_embeddings (64)" in err, err


def test_the_default_length_fits_the_model_and_evaluate_checks_a_given_one(short_model, long_texts, tmp_path,
                                                                         capsys):
    out = tmp_path / "model"
    assert cli(["finetune", "classify", "--model", str(short_model), "--train", str(long_texts), "--out", str(out),
                "--max-steps", "1", "--batch-size", "4", "--no-xla"]) == 0
    saved = json.loads((out / "config.json").read_text())["bertkit_task_options"]
    assert saved["max_length"] == 64  # the classify default (128) lowered to the model's positions
    capsys.readouterr()
    assert cli(["evaluate", "--model", str(out), "--data", str(long_texts), "--max-length", "100"]) == 2
    assert "--max-length 100 exceeds the model's max_position_embeddings (64)" in capsys.readouterr().err
    assert cli(["evaluate", "--model", str(out), "--data", str(long_texts), "--max-length", "32"]) == 0


def test_a_headerless_file_keeps_a_rare_first_label(tmp_path, caplog):
    path = tmp_path / "train.tsv"
    path.write_text("it was fine I guess\tneutral\ngreat fun\tpositive\nawful\tnegative\n"
                    "loved it\tpositive\nboring\tnegative\n")
    with caplog.at_level(logging.WARNING):
        examples = TASKS["classify"]().read(str(path), train=True)
    assert len(examples) == 5 and examples[0].label == "neutral"
    assert TASKS["classify"]().labels_from(examples) == ["negative", "neutral", "positive"]
    assert "train.tsv:1: read as data" in caplog.text and "--header" in caplog.text


@pytest.mark.parametrize("first_row,is_header", [("sentence\tlabel", True), ("text\tClass", True),
                                                 ("words\tsentiment", True), ("text\ty", True),
                                                 ("a real sentence\t1", False), ("review\tscore", True)])
def test_header_guess(tmp_path, first_row, is_header, caplog):
    path = tmp_path / "f.tsv"
    path.write_text(f"{first_row}\nsome text\t0\nmore text\t1\n")
    with caplog.at_level(logging.WARNING):
        examples = read_classification_file(path)
    assert len(examples) == (2 if is_header else 3)
    assert ("a header" if is_header else "as data") in caplog.text


def test_numeric_labels_under_a_word_header(tmp_path):
    path = tmp_path / "f.tsv"
    path.write_text("text\tstars\ngood\t5\nbad\t1\nok\t3\n")  # 'stars' is no header word, but not a number
    assert [e.label for e in read_classification_file(path)] == ["5", "1", "3"]


def test_ner_trains_on_the_files_own_tags(shared_data, tmp_path):
    path = shared_data / "conll2003" / "eng.testa"
    as_given = read_conll(path)
    converted = read_conll(path, to_iob2=True)
    assert detect_scheme(e.tags for e in as_given) == "IOB1"
    assert detect_scheme(e.tags for e in converted) == "IOB2"
    assert detect_scheme(e.tags for e in read_conll(shared_data / "wnut17" / "emerging.dev.conll")) == "IOB2"
    task = TASKS["ner"]()
    assert task.read(str(path))[0].tags == as_given[0].tags
    assert TASKS["ner"](tag_scheme="iob2").read(str(path))[0].tags == converted[0].tags
    b_tags_file = sum(t.startswith("B-") for e in as_given for t in e.tags)
    b_tags_iob2 = sum(t.startswith("B-") for e in converted for t in e.tags)
    assert b_tags_file < b_tags_iob2  # IOB1: B- only between touching entities of one type
    with pytest.raises(ValueError, match="--tag-scheme"):
        TASKS["ner"](tag_scheme="bio").read(str(path))
