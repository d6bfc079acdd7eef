"""Unit tests of the pieces: basic tokenizer, WordPiece, character tables (no data needed)."""

from __future__ import annotations

import numpy as np
import pytest

from bertkit.tokenizer import BertTokenizer
from bertkit.tokenizer.basic import BasicTokenizer
from bertkit.tokenizer.wordpiece import WordPiece

# google-research/bert tokenization_test.py's vocab and cases.
TINY_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "want", "##want", "##ed", "wa", "un", "runn",
              "##ing", ",", "low", "lowest"]


def test_basic_lower_and_accents():
    basic = BasicTokenizer(lower_case=True)
    assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert basic.tokenize("H\u00E9llo") == ["hello"]


def test_strip_accents_is_independent_of_lower_case():
    assert BasicTokenizer(lower_case=True, strip_accents=False).tokenize("HäLLo") == ["hällo"]
    assert BasicTokenizer(lower_case=False, strip_accents=True).tokenize("HäLLo") == ["HaLLo"]
    assert BasicTokenizer(lower_case=False).tokenize(" \tHeLLo!how  \n Are yoU? ") == \
        ["HeLLo", "!", "how", "Are", "yoU", "?"]


def test_chinese_chars_split_and_switch():
    assert BasicTokenizer().tokenize("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("ah\u535A\u63A8zz") == ["ah\u535A\u63A8zz"]


def test_ascii_punctuation_rule():
    # $ ^ ` are Unicode symbols (Sc/Sk), but BERT treats all non-alphanumeric ASCII as punctuation.
    assert BasicTokenizer().tokenize("a$b^c`d") == ["a", "$", "b", "^", "c", "`", "d"]


def test_control_chars_removed_and_whitespace_split():
    assert BasicTokenizer().tokenize("a\x00b\u200bc\xadd e\u3000f\r\ng") == ["abcd", "e", "f", "g"]


def test_never_split_special_tokens():
    basic = BasicTokenizer(never_split=["[MASK]"])
    words = basic.split("the [MASK]x [mask]")
    assert [w.text for w in words] == ["the", "[MASK]", "x", "[", "mask", "]"]
    assert words[1].special and (words[1].start, words[1].end) == (4, 10)


def test_final_sigma_lowercased_per_character():
    # Rust's char::to_lowercase (the reference) has no final-sigma rule; Python's str.lower has.
    assert BasicTokenizer(lower_case=True, strip_accents=False).tokenize("ΟΔΟΣ") == ["οδοσ"]


def test_wordpiece_google_cases():
    vocab = {t: i for i, t in enumerate(TINY_VOCAB)}
    wp = WordPiece(vocab)
    pieces = lambda w: [TINY_VOCAB[i] for i, _, _ in wp.tokenize(w)]  # noqa: E731
    assert pieces("unwanted") == ["un", "##want", "##ed"]
    assert pieces("unwantedX") == ["[UNK]"]  # one failure makes the whole word [UNK]
    assert pieces("runnning") == ["[UNK]"]
    assert [(s, e) for _, s, e in wp.tokenize("unwanted")] == [(0, 2), (2, 6), (6, 8)]


def test_wordpiece_max_chars():
    vocab = {"[UNK]": 0, "a": 1, "##a": 2}
    assert WordPiece(vocab, max_input_chars_per_word=5).tokenize("aaaaa") == ((1, 0, 1),) + tuple(
        (2, i, i + 1) for i in range(1, 5))
    assert WordPiece(vocab, max_input_chars_per_word=5).tokenize("aaaaaa") == ((0, 0, 6),)


def test_full_tokenizer_google_case():
    tok = BertTokenizer(TINY_VOCAB, check_casing=False)
    assert tok.tokenize("UNwant\u00E9d,running") == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tok.convert_tokens_to_ids(["un", "##want", "##ed", ",", "runn", "##ing"]) == [9, 6, 7, 12, 10, 11]
    assert tok.convert_ids_to_tokens([9, 6]) == ["un", "##want"]


def test_offsets_into_original_text_when_lengths_change():
    tok = BertTokenizer(TINY_VOCAB, check_casing=False)
    text = "İ UNwant\u00E9d"  # İ lower-cases to 2 chars, é decomposes to 2
    pieces, offsets, word_ids = tok.tokenize_with_offsets(text)
    assert pieces == ["[UNK]", "un", "##want", "##ed"]
    assert offsets == [(0, 1), (2, 4), (4, 8), (8, 10)]
    assert word_ids == [0, 1, 1, 1]


@pytest.mark.parametrize("settings", [(True, None, True), (False, None, True), (True, False, False)])
def test_char_tables_match_python_normaliser(settings):
    """The in-graph tables reproduce normalize_char on a spread of code points."""
    from bertkit.tokenizer.charmap import build_char_tables

    tables = build_char_tables(*settings)
    basic = BasicTokenizer(*settings)
    rng = np.random.default_rng(0)
    cps = list(range(0, 0x3000)) + list(range(0xAC00, 0xAD00)) + rng.integers(0, 0x110000, 3000).tolist()
    for cp in cps:
        out, classes = basic.normalize_char(chr(cp))
        assert tables.expand(cp) == ([ord(c) for c in out], list(classes)), hex(cp)
