"""Loading and saving: HF-compatible files, settings round-trip, clear errors on bad vocabs."""

from __future__ import annotations

import json
import shutil

import pytest

from bertkit.tokenizer import BertTokenizer, CasingError, VocabError, load_tokenizer

from .conftest import VOCABS

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _write(path, lines, end="\n"):
    path.write_text("".join(t + end for t in lines), encoding="utf-8")
    return path


def test_attributes(uncased):
    assert uncased.vocab_size == 30522 == len(uncased.inv_vocab)
    assert (uncased.pad_id, uncased.unk_id, uncased.cls_id, uncased.sep_id, uncased.mask_id) == (0, 100, 101, 102, 103)
    assert uncased.special_ids == {0, 100, 101, 102, 103}
    assert uncased.lower_case and uncased.vocab["hello"] == uncased.inv_vocab.index("hello")


def test_settings_read_from_config(case):
    tok = load_tokenizer(VOCABS[case])
    assert tok.lower_case == (case == "uncased")
    assert load_tokenizer(VOCABS[case] / "vocab.txt").lower_case == (case == "uncased")


def test_save_load_round_trip(tmp_path, uncased):
    tok = BertTokenizer(uncased.inv_vocab, lower_case=True, strip_accents=False, tokenize_chinese_chars=False,
                        model_max_length=128)
    tok.save(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True and config["strip_accents"] is False
    assert config["tokenizer_class"] == "BertTokenizer" and config["mask_token"] == "[MASK]"
    back = load_tokenizer(tmp_path)
    assert back.inv_vocab == tok.inv_vocab
    assert (back.lower_case, back.strip_accents, back.tokenize_chinese_chars, back.model_max_length) == \
        (True, False, False, 128)
    assert back.tokenize("Héllo 中文") == tok.tokenize("Héllo 中文")


def test_saved_directory_loads_in_transformers(tmp_path, case):
    transformers = pytest.importorskip("transformers")
    load_tokenizer(VOCABS[case]).save(tmp_path)
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = load_tokenizer(tmp_path)
    text = "Hello, naïve WORLD [MASK]! 中文"
    assert hf(text)["input_ids"] == ours.encode(text).ids
    assert hf(text, return_offsets_mapping=True)["offset_mapping"] == ours.encode(text).offsets


def test_casing_inferred_without_config(tmp_path, case):
    shutil.copy(VOCABS[case] / "vocab.txt", tmp_path / "vocab.txt")
    assert load_tokenizer(tmp_path).lower_case == (case == "uncased")


def test_tokenizer_json_only_directory(tmp_path, minilm_path):
    shutil.copy(f"{minilm_path}/tokenizer.json", tmp_path / "tokenizer.json")
    tok = load_tokenizer(tmp_path)
    assert tok.vocab_size == 30522 and tok.lower_case and tok.max_input_chars_per_word == 100


def test_casing_contradiction_is_an_error(case):
    with pytest.raises(CasingError, match="lower_case"):
        BertTokenizer(VOCABS[case] / "vocab.txt", lower_case=case == "cased")
    BertTokenizer(VOCABS[case] / "vocab.txt", lower_case=case == "cased", check_casing=False)


def test_empty_vocab(tmp_path):
    with pytest.raises(VocabError, match="empty") as err:
        BertTokenizer(_write(tmp_path / "vocab.txt", []))
    assert err.value.path.endswith("vocab.txt")


def test_missing_special_token(tmp_path):
    path = _write(tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"])
    with pytest.raises(VocabError, match=r"missing special token\(s\) \[MASK\]"):
        BertTokenizer(path)


def test_duplicate_entry_names_both_lines(tmp_path):
    path = _write(tmp_path / "vocab.txt", SPECIALS + ["hello", "world", "hello"])
    with pytest.raises(VocabError, match="duplicate token 'hello'.*line 6") as err:
        BertTokenizer(path)
    assert err.value.line == 8 and "vocab.txt:8" in str(err.value)


def test_blank_line_is_an_error(tmp_path):
    path = _write(tmp_path / "vocab.txt", SPECIALS + ["a", "", "b"])
    with pytest.raises(VocabError, match="empty") as err:
        BertTokenizer(path)
    assert err.value.line == 7


def test_non_utf8_vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes("\n".join(SPECIALS).encode() + b"\ncaf\xe9\n")
    with pytest.raises(VocabError, match="UTF-8") as err:
        BertTokenizer(path)
    assert err.value.line == 6


def test_crlf_and_bom_vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(SPECIALS + ["hello"]).encode() + b"\r\n")
    tok = BertTokenizer(path)
    assert tok.inv_vocab == SPECIALS + ["hello"] and tok.tokenize("hello") == ["hello"]


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError):
        BertTokenizer(tmp_path / "nope.txt")
