"""Zero mismatches against HF `tokenizers` on every text of ../shared/data, both BERT vocabs.

Compared per text: token ids, character offsets and word ids, for the Python path and the
in-graph path. Texts are de-duplicated (CoNLL repeats many rows). The default run checks every
25th text plus every non-ASCII one; the `slow` run checks all ~360k distinct texts.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from .shared_texts import SHARED_DATA, all_texts, sample

CHUNK = 10_000


@functools.lru_cache(maxsize=1)
def _texts_by_source() -> dict[str, str]:
    """distinct text -> the first source it appears in (for error messages)."""
    if not SHARED_DATA.exists():
        pytest.fail("../shared/data is not present", pytrace=False)
    first: dict[str, str] = {}
    for name, texts in all_texts().items():
        for t in texts:
            first.setdefault(t, name)
    return first


def _texts(full: bool) -> list[str]:
    texts = sorted(_texts_by_source())
    return texts if full else sample(texts, 25)


class Flat:
    """Token ids / offsets / word ids of many texts as flat numpy arrays plus row splits."""

    def __init__(self, ids, starts, ends, word_ids, lengths):
        arrays = (np.asarray(x, np.int64) for x in (ids, starts, ends, word_ids))
        self.ids, self.starts, self.ends, self.word_ids = arrays
        self.splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    @classmethod
    def from_encodings(cls, encodings) -> "Flat":
        ids, offsets, word_ids, lengths = [], [], [], []
        for e in encodings:
            ids += e.ids
            offsets += e.offsets
            word_ids += e.word_ids
            lengths.append(len(e.ids))
        offsets = np.asarray(offsets, np.int64).reshape(-1, 2)
        return cls(ids, offsets[:, 0], offsets[:, 1], word_ids, lengths)

    def row(self, i: int):
        lo, hi = self.splits[i], self.splits[i + 1]
        return self.ids[lo:hi].tolist(), list(zip(self.starts[lo:hi].tolist(), self.ends[lo:hi].tolist()))

    def equals(self, other: "Flat") -> bool:
        return all(np.array_equal(getattr(self, k), getattr(other, k))
                   for k in ("splits", "ids", "starts", "ends", "word_ids"))


@functools.lru_cache(maxsize=4)
def _reference_results(case: str, full: bool) -> Flat:
    from .conftest import VOCABS, hf_reference

    ref = hf_reference(VOCABS[case] / "vocab.txt", lower_case=case == "uncased")
    texts = _texts(full)
    return Flat.from_encodings(h for i in range(0, len(texts), CHUNK)
                               for h in ref.encode_batch(texts[i:i + CHUNK], add_special_tokens=False))


def _report(texts, expected: Flat, got: Flat) -> None:
    if expected.equals(got):
        return
    where = _texts_by_source()
    bad = [i for i in range(len(texts)) if expected.row(i) != got.row(i)
           or not np.array_equal(expected.word_ids[expected.splits[i]:expected.splits[i + 1]],
                                 got.word_ids[got.splits[i]:got.splits[i + 1]])]
    details = "\n".join(f"  {where[texts[i]]}: {texts[i][:80]!r}\n    hf  {expected.row(i)[0][:12]} "
                        f"{expected.row(i)[1][:4]}\n    got {got.row(i)[0][:12]} {got.row(i)[1][:4]}"
                        for i in bad[:5])
    assert not bad, f"{len(bad)} of {len(texts)} texts differ from HF:\n{details}"
    assert False, "flat arrays differ but no row does (lengths?)"


def _python_results(tok, texts) -> Flat:
    return Flat.from_encodings(tok.encode(t, add_special_tokens=False) for t in texts)


def _graph_results(tok, texts, ascii_fast_path=True) -> Flat:
    import tensorflow as tf

    graph = tok.in_graph(max_length=None, padding="longest", ascii_fast_path=ascii_fast_path)
    fn = tf.function(graph.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    parts = {k: [] for k in ("ids", "starts", "ends", "word_ids")}
    lengths = []
    for i in range(0, len(texts), CHUNK):
        r = fn(tf.constant(texts[i:i + CHUNK]))
        for k in parts:
            parts[k].append(r[k].flat_values.numpy())
        lengths.append(r["ids"].row_lengths().numpy())
    return Flat(*(np.concatenate(parts[k]) for k in parts), np.concatenate(lengths))


def test_python_path_sample(case, ours):
    texts = _texts(full=False)
    _report(texts, _reference_results(case, False), _python_results(ours, texts))


@pytest.mark.parametrize("ascii_fast_path", [True, False], ids=["ascii-shortcut", "general"])
def test_graph_path_sample(case, ours, ascii_fast_path):
    texts = _texts(full=False)
    _report(texts, _reference_results(case, False), _graph_results(ours, texts, ascii_fast_path))


@pytest.mark.slow
def test_python_path_all_texts(case, ours):
    texts = _texts(full=True)
    _report(texts, _reference_results(case, True), _python_results(ours, texts))


@pytest.mark.slow
def test_graph_path_all_texts(case, ours):
    texts = _texts(full=True)
    _report(texts, _reference_results(case, True), _graph_results(ours, texts))
