"""Property tests (hypothesis) on random Unicode: no crash, sane offsets, HF parity, round trip."""

from __future__ import annotations

import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import VOCABS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Random text with a bias towards the characters that matter: letters with accents, marks,
# CJK, punctuation, spaces, controls, and the special tokens themselves.
PIECES = st.sampled_from(["[MASK]", "[CLS]", "[mask]", " ", "\t", "\r\n", "\u200b", "\xad", "é", "e\u0301",
                          "\u0316", "İ", "ß", "Σ", "中", "한", "😀", "'", "##", "...", "$"])
TEXT = st.lists(st.one_of(st.text(max_size=8), PIECES, st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True)),
                max_size=12).map("".join)
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)  # lone surrogates too


@functools.lru_cache(maxsize=None)
def _uncased():
    from bertkit.tokenizer import load_tokenizer

    return load_tokenizer(VOCABS["uncased"])


@functools.lru_cache(maxsize=None)
def _reference():
    from .conftest import hf_reference

    return hf_reference(VOCABS["uncased"] / "vocab.txt", lower_case=True)


def _check_offsets(text: str, enc) -> None:
    spans = [o for o, s in zip(enc.offsets, enc.sequence_ids) if s is not None]
    for start, end in spans:
        assert 0 <= start < end <= len(text)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    assert [e for _, e in spans] == sorted(e for _, e in spans)


@SETTINGS
@given(ANY_TEXT)
def test_no_crash_and_offsets_in_range(uncased, text):
    enc = uncased.encode(text)
    assert enc.ids[0] == uncased.cls_id and enc.ids[-1] == uncased.sep_id
    _check_offsets(text, enc)
    uncased.decode(enc.ids)


@SETTINGS
@given(TEXT, TEXT)
def test_matches_hf_on_random_text(uncased, text, pair):
    h, e = _reference().encode(text, pair), uncased.encode(text, pair)
    assert (e.ids, e.offsets, e.word_ids, e.type_ids) == (h.ids, [tuple(o) for o in h.offsets], h.word_ids, h.type_ids)
    _check_offsets(text, uncased.encode(text))


@functools.lru_cache(maxsize=None)
def _whole_words(case: str) -> list[str]:
    """Vocab entries that are whole words and survive basic tokenization unchanged."""
    from bertkit.tokenizer import load_tokenizer

    tok = load_tokenizer(VOCABS[case])
    return [t for t in tok.inv_vocab if not t.startswith("##") and t not in tok.special_tokens.values()
            and not t.startswith("[unused") and tok.basic.tokenize(t) == [t] and t.upper().lower() == t]


@SETTINGS
@given(st.data())
def test_decode_inverts_encode_for_in_vocab_text(case, ours, data):
    words = data.draw(st.lists(st.sampled_from(_whole_words(case)), max_size=15))
    if case == "uncased":  # casing is normalised away, so vary it
        words_in = [data.draw(st.sampled_from([w, w.upper(), w.title()])) for w in words]
    else:
        words_in = words
    seps = data.draw(st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\r\n"]),
                              min_size=len(words), max_size=len(words)))
    text = "".join(s + w for s, w in zip(seps, words_in))
    enc = ours.encode(text)
    assert ours.decode(enc.ids, clean_up_tokenization_spaces=False) == " ".join(words)
    assert len(enc.ids) == len(words) + 2  # every whole word is one piece
