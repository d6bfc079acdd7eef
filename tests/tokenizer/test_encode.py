"""encode / encode_batch: pairs, truncation, padding and decode, against HF `tokenizers`."""

from __future__ import annotations

import itertools

import pytest

from bertkit.tokenizer import Encoding

A = "The quick brown fox jumps over the lazy dog near the riverbank, twice."
B = "Pack my box with five dozen liquor jugs."
FIELDS = ("ids", "tokens", "type_ids", "attention_mask", "word_ids", "sequence_ids", "special_tokens_mask")


def _same(e: Encoding, h) -> None:
    for f in FIELDS:
        assert getattr(e, f) == getattr(h, f), f
    assert e.offsets == [tuple(o) for o in h.offsets]


def test_pair_matches_hf(uncased, uncased_reference):
    _same(uncased.encode(A, B), uncased_reference.encode(A, B))


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("max_length", [8, 12, 17, 20, 25, 40])
@pytest.mark.parametrize("texts", [(A, B), (B, A), (A, A), ("short", A), (A, "short")])
def test_truncation_matches_hf(uncased, uncased_reference, strategy, max_length, texts):
    ref = uncased_reference
    ref.enable_truncation(max_length, strategy=strategy)
    try:
        try:
            h = ref.encode(*texts)
        except Exception:  # HF refuses: the sequence it may cut is too short
            with pytest.raises(ValueError, match="too short"):
                uncased.encode(*texts, max_length=max_length, truncation=strategy)
            return
        _same(uncased.encode(*texts, max_length=max_length, truncation=strategy), h)
    finally:
        ref.no_truncation()


@pytest.mark.parametrize("max_length", [2, 3, 5, 10])
def test_single_truncation_matches_hf(uncased, uncased_reference, max_length):
    uncased_reference.enable_truncation(max_length)
    try:
        _same(uncased.encode(A, max_length=max_length), uncased_reference.encode(A))
    finally:
        uncased_reference.no_truncation()


def test_batch_padding_matches_hf(uncased, uncased_reference):
    texts, pairs = [A, B, "", "x"], [B, "", A, "y z"]
    uncased_reference.enable_padding(pad_id=uncased.pad_id, pad_token="[PAD]")
    try:
        for ours, ref in zip(uncased.encode_batch(texts, pairs, padding="longest"),
                             uncased_reference.encode_batch(list(zip(texts, pairs)))):
            _same(ours, ref)
    finally:
        uncased_reference.no_padding()


def test_padding_to_max_length(uncased):
    enc = uncased.encode("hello", max_length=8, padding="max_length")
    assert enc.ids == [uncased.cls_id, uncased.vocab["hello"], uncased.sep_id] + [uncased.pad_id] * 5
    assert enc.attention_mask == [1, 1, 1, 0, 0, 0, 0, 0]
    assert enc.offsets[3:] == [(0, 0)] * 5 and enc.word_ids[3:] == [None] * 5
    batch = uncased.encode_batch(["a b c d e f g h i j", "a"], max_length=6, padding="max_length")
    assert [len(e) for e in batch] == [6, 6]


def test_no_special_tokens_and_no_truncation(uncased):
    enc = uncased.encode("hello world", add_special_tokens=False)
    assert enc.tokens == ["hello", "world"] and enc.special_tokens_mask == [0, 0]
    assert len(uncased.encode(A, max_length=5, truncation=False)) > 5


def test_word_and_char_lookup(uncased):
    enc = uncased.encode("Tokenization works", "again")
    t = enc.char_to_token(3)
    assert enc.tokens[t] == "token" and enc.word_ids[t] == 0
    assert enc.tokens[enc.char_to_token(0, sequence_index=1)] == "again"
    assert enc.char_to_token(100) is None


def test_decode_matches_hf(ours, reference):
    for text in [A, B, "Hello , world . don 't do not it ' s", "naïve café [MASK] ñ", "x" * 300]:
        ids = ours.encode(text).ids
        for skip in (True, False):
            assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
    assert ours.decode(ours.encode("a , b").ids, clean_up_tokenization_spaces=False) == "a , b"


def test_bad_arguments(uncased):
    with pytest.raises(TypeError):
        uncased.encode(None)
    with pytest.raises(TypeError):
        uncased.encode_batch("not a list")
    with pytest.raises(ValueError, match="padding"):
        uncased.encode("a", padding="max_length")
    with pytest.raises(ValueError, match="truncation"):
        uncased.encode("a", max_length=5, truncation="sideways")
    with pytest.raises(ValueError, match="special tokens"):
        uncased.encode("a", "b", max_length=2)
    with pytest.raises(ValueError, match="pairs"):
        uncased.encode_batch(["a", "b"], pairs=["c"])


def test_truncation_lengths_exhaustive():
    """longest_first always fills the budget exactly and never invents tokens."""
    from bertkit.tokenizer.encoding import truncated_lengths

    for la, lb, budget in itertools.product(range(7), range(7), range(9)):
        ka, kb = truncated_lengths(la, lb, budget, "longest_first")
        assert ka <= la and kb <= lb
        assert ka + kb == min(la + lb, budget)
