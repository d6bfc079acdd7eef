"""Torture strings: every Encoding field and decode() equal HF `tokenizers`, both vocabs."""

from __future__ import annotations

import pytest

TORTURE = [
    "A, naïve [MASK] AllenNLP sentence.",
    "Æsir ÆØÅ æøå Œuvre ŒUVRE ß SS ẞ",
    "soft\xadhyphen co\u00adop\u00ad",
    "zero\u200bwidth\u200c\u200djoin \u200eltr\u200f\u202arle\u202c \ufeffbom",
    "mixed中文Latin混合text, 日本語とEnglish; 한국어 테스트",
    "emoji 😀🤩👍🏽 👨‍👩‍👧 🇫🇷 ❤️ ☃",
    "[MASK] at start, in mid[MASK]dle, [CLS][SEP][PAD][UNK] adjacent, [mask] lower, [ MASK ] spaced",
    "[[MASK]] [MASK [MASK]] ]]]",
    "runs!!!??? ...... ---- ,,,, ''' \"\"\" ((( ))) $$$ ^^^ ``` ~~~ @@@",
    "supercalifragilisticexpialidocious " + "x" * 150 + " " + "é" * 120 + " " + "a" * 201,
    "",
    " ",
    "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000 ",
    "line one\r\nline two\rline three\n",
    "\rto\nsee\r\nif  those\u00e9break",
    "齉 堃 Gaelaċ, ꝼ",
    "İstanbul ǅ ΟΔΟΣ Ὀδυσσεύς ﬁne ﬀ Ⅻ ①",
    "e\u0301 e\u0316\u0301 a\u0301\u0316 ab\u0301\u0316c\u0323\u0301 \u0344",
    "ℌ𝔢𝔩𝔩𝔬 𝐛𝐨𝐥𝐝 Ｆｕｌｌｗｉｄｔｈ",
    "\x00nul\ufffdrepl\x7fdel\x01ctl",
    "Tab\tseparated\tvalues\t0",
    "Brunetière, Coppée, Barrès, Lemaître.",
    "unicode punct: «quoted» „low“ ‹single› ¡hola! ¿qué? — – … · ¶ § † ‡",
    "math ≠ ≤ ≥ ± × ÷ √ ∞ ∑ ∫ ∂ ∆ µ μ Ω Ω",
    "arabic مرحبا hebrew שלום thai สวัสดี devanagari नमस्ते",
    "don't won't it's I'm you've we're",
    "U.S.A. e.g. i.e. 3.14 1,000,000 $5.00 50% #hashtag @user http://example.com/a?b=c&d=e",
    "ÀÁÂÃÄÅ àáâãäå ÇçÑñ ÈÉÊË ÌÍÎÏ ÒÓÔÕÖØ ÙÚÛÜ Ýÿ",
    "\u0378\u0379 unassigned \U000E0001\U000E0020 tags \U0010FFFD private \ue000",
    "\u2e43\u2e44 new punct \u166d old punct \u0898 new mark",
    # NFD re-ordering of combining marks (HF realigns by position; U+0899 is a starter to HF)
    "\u0300\u0899 a\u0300\u0316 \u00e9\u0316\u0323 \u1e09\u0316 e\u0316\u0300\u0316",
    "a\u0301\U0001D165x \U0001D16D\U0001D165 q\u0316\U0001D16D\u0301\U0001D165",
]


@pytest.mark.parametrize("text", TORTURE, ids=range(len(TORTURE)))
def test_encoding_matches_hf(ours, reference, text):
    h, e = reference.encode(text), ours.encode(text)
    assert e.tokens == h.tokens
    assert e.ids == h.ids
    assert e.offsets == [tuple(o) for o in h.offsets]
    assert e.word_ids == h.word_ids
    assert e.type_ids == h.type_ids
    assert e.special_tokens_mask == h.special_tokens_mask
    assert e.attention_mask == h.attention_mask
    assert ours.decode(e.ids) == reference.decode(h.ids)
    assert ours.decode(e.ids, skip_special_tokens=False) == reference.decode(h.ids, skip_special_tokens=False)


def test_pinned_offsets(uncased):
    """HF's test_offsets_with_special_characters, pinned."""
    enc = uncased.encode("A, naïve [MASK] AllenNLP sentence.")
    assert enc.tokens == ["[CLS]", "a", ",", "naive", "[MASK]", "allen", "##nl", "##p", "sentence", ".", "[SEP]"]
    assert enc.offsets == [(0, 0), (0, 1), (1, 2), (3, 8), (9, 15), (16, 21), (21, 23), (23, 24), (25, 33),
                           (33, 34), (0, 0)]


def test_empty_and_whitespace_only(uncased):
    for text in ["", "   ", "\r\n\t", "\u200b\xad"]:
        enc = uncased.encode(text)
        assert enc.tokens == ["[CLS]", "[SEP]"]
        assert uncased.tokenize(text) == []


def test_long_words_become_unk(uncased):
    assert uncased.tokenize("a" * 100) != ["[UNK]"]
    assert uncased.tokenize("a" * 101) == ["[UNK]"]
    _, offsets, _ = uncased.tokenize_with_offsets("hi " + "é" * 101)
    assert offsets[-1] == (3, 104)


def test_minilm_tokenizer_json_parity(minilm_path):
    """load_tokenizer on a HF model directory takes its settings (incl. the 100-char word limit)."""
    from tokenizers import Tokenizer

    from bertkit.tokenizer import load_tokenizer

    ref = Tokenizer.from_file(f"{minilm_path}/tokenizer.json")
    ref.no_truncation()
    ref.no_padding()
    ours = load_tokenizer(minilm_path)
    assert ours.lower_case and ours.max_input_chars_per_word == 100
    for text in TORTURE:
        h, e = ref.encode(text), ours.encode(text)
        assert (e.ids, e.offsets) == (h.ids, [tuple(o) for o in h.offsets]), text


def test_lone_surrogates_are_dropped(uncased):
    # Python strings may hold them (e.g. surrogateescape); HF cannot even receive them.
    pieces, offsets, _ = uncased.tokenize_with_offsets("ab\ud800cd \udfff")
    assert pieces == ["abc", "##d"] and offsets == [(0, 4), (4, 5)]


SETTINGS = [(True, None, True), (True, False, True), (False, True, True), (False, None, False), (True, None, False)]


@pytest.mark.parametrize("lower_case,strip_accents,chinese", SETTINGS)
def test_every_setting_matches_hf(lower_case, strip_accents, chinese):
    """lower_case / strip_accents / tokenize_chinese_chars combinations, as HF's BertNormalizer."""
    from tokenizers import normalizers

    from bertkit.tokenizer import BertTokenizer

    from .conftest import VOCABS, hf_reference

    vocab = VOCABS["uncased"] / "vocab.txt"
    if not vocab.exists():
        pytest.fail("../shared/data is not present", pytrace=False)
    ref = hf_reference(vocab, lower_case=lower_case)
    ref.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=chinese,
                                                strip_accents=strip_accents, lowercase=lower_case)
    ours = BertTokenizer(vocab, lower_case=lower_case, strip_accents=strip_accents,
                         tokenize_chinese_chars=chinese, check_casing=False)
    for text in TORTURE:
        h, e = ref.encode(text), ours.encode(text)
        assert (e.ids, e.offsets, e.word_ids) == (h.ids, [tuple(o) for o in h.offsets], h.word_ids), text
