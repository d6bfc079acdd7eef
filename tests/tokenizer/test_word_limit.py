"""The longest word WordPiece splits is the one transformers uses for the same directory: 100
characters, whatever tokenizer_config.json or tokenizer.json say (transformers 5 rebuilds WordPiece
from the vocab with its default); the Python and the in-graph tokenizer agree."""

import json
import shutil

import pytest

from bertkit.tokenizer import load_tokenizer

transformers = pytest.importorskip("transformers")

WORDS = ["b" * 99, "b" * 100, "b" * 101, "é" * 101, "hello " + "xy" * 60 + " world", "short words only"]


def transformers_pieces(directory, text):
    return transformers.BertTokenizer.from_pretrained(str(directory)).tokenize(text)


def check_same(directory):
    ours = load_tokenizer(directory)
    graph = ours.in_graph()
    for text in WORDS:
        expected = transformers_pieces(directory, text)
        assert ours.tokenize(text) == expected, text
        ids = graph([text])["input_ids"].numpy()[0]
        assert [ours.inv_vocab[i] for i in ids if i != ours.pad_id][1:-1] == expected, text


def test_vocab_only_directory_and_what_bertkit_saves(minilm_path, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(f"{minilm_path}/vocab.txt", bare / "vocab.txt")
    check_same(bare)
    assert load_tokenizer(bare).tokenize("b" * 101) == ["[UNK]"]

    saved = tmp_path / "saved"
    load_tokenizer(bare).save(saved)
    assert "max_input_chars_per_word" not in json.loads((saved / "tokenizer_config.json").read_text())
    check_same(saved)


def test_a_limit_in_tokenizer_config_is_ignored_as_transformers_ignores_it(minilm_path, tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    shutil.copy(f"{minilm_path}/vocab.txt", d / "vocab.txt")
    (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "max_input_chars_per_word": 200}))
    assert transformers_pieces(d, "b" * 101) == ["[UNK]"]
    check_same(d)


def test_a_limit_in_tokenizer_json_is_ignored_too(minilm_path, tmp_path):
    d = tmp_path / "fast"
    shutil.copytree(minilm_path, d)
    data = json.loads((d / "tokenizer.json").read_text())
    data["model"]["max_input_chars_per_word"] = 120
    (d / "tokenizer.json").write_text(json.dumps(data))
    assert load_tokenizer(d).max_input_chars_per_word == 100
    assert transformers_pieces(d, "b" * 101) == ["[UNK]"]
    check_same(d)
