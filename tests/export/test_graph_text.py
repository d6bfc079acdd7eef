"""The in-graph helpers equal the Python functions they mirror (no model needed: fast)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import tensorflow as tf

from bertkit.data.common import doc_spans, max_context_owner
from bertkit.data.ner import split_words, tag_spans
from bertkit.export.ner import entity_spans, tag_tables
from bertkit.export.text import doc_windows, max_context_owner as graph_owner, split_words as graph_split

TORTURE = [
    "U.S. officials said, \"don't\" go to Jean-Luc's rock'n'roll bar & grill at 3.14 p.m.!",
    "AT&T vs. A&P: x_y __init__ 1,000,000 2½ x² ①",
    "naïve café e\u0301te\u0301 Ünïcödé straße",           # precomposed and combining accents
    "北京欢迎你 東京 서울 こんにちは",                         # CJK, Hangul, kana
    "हिन्दी भाषा العربية עברית",  # marks inside words (not \\w in Python)
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideographic\u2028line\u0085nel",
    "emoji 😀👍🏽 flags 🇫🇷 zwj 👨\u200d👩\u200d👧 zero\u200bwidth soft\u00adhyphen",
    "@user #hashtag http://t.co/xyz?a=1&b=2 e-mail: a.b@c.de",
    "  leading and trailing  ", "", "'", "-", "a'", "'a", "...", "x.-y",
]


@pytest.mark.parametrize("text", TORTURE)
def test_split_words_matches_python(text):
    got = graph_split(tf.constant([text, "pad"]))
    words = [w.decode("utf-8") for w in got["words"][0].numpy()]
    assert list(zip(words, got["starts"][0].numpy().tolist(), got["ends"][0].numpy().tolist())) == split_words(text)


def test_doc_windows_and_owner_match_python():
    cases = [(n, w, s) for n, w, s in itertools.product([0, 1, 5, 12, 13, 40, 97], [1, 3, 12, 13], [1, 2, 5, 13, 40])]
    lengths = tf.constant([c[0] for c in cases])
    got = doc_windows(lengths, tf.constant([c[1] for c in cases]), 5)  # per-example window, one stride
    example, start, length = (got[k].numpy().tolist() for k in ("example", "start", "length"))
    positions = [(e, p) for e, (n, _, _) in enumerate(cases) for p in range(n)]
    owner = graph_owner(got, tf.constant([e for e, _ in positions], tf.int32),
                        tf.constant([p for _, p in positions], tf.int32)).numpy().tolist()
    by_example = {}
    for (e, p), k in zip(positions, owner):
        by_example.setdefault(e, []).append(k)
    for e, (n, window, _) in enumerate(cases):
        spans = doc_spans(n, window, 5)
        assert [(s, ln) for ex, s, ln in zip(example, start, length) if ex == e] == spans, (n, window)
        assert by_example.get(e, []) == max_context_owner(spans, n).tolist(), (n, window)


@pytest.mark.parametrize("stride", [1, 3, 64])
def test_doc_windows_static_window(stride):
    got = doc_windows(tf.constant([0, 10, 300]), 16, stride)
    spans = [(s, ln) for s, ln in zip(got["start"].numpy(), got["length"].numpy())]
    assert spans == doc_spans(0, 16, stride) + doc_spans(10, 16, stride) + doc_spans(300, 16, stride)


def test_entity_spans_match_tag_spans():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC", "I-X"]
    kinds, types, _ = tag_tables(labels)
    rng = random.Random(0)
    sentences = [[rng.randrange(len(labels)) for _ in range(rng.randrange(0, 12))] for _ in range(300)]
    flat = [t for s in sentences for t in s]
    example = [i for i, s in enumerate(sentences) for _ in s]
    first, last = entity_spans(tf.gather(kinds, flat), tf.gather(types, flat), tf.constant(example, tf.int32))
    got = [(example[f], labels[flat[f]].partition("-")[2], f, lw) for f, lw in zip(first.numpy(), last.numpy())]
    want, offset = [], 0
    for i, s in enumerate(sentences):
        want += [(i, t, offset + a, offset + b) for t, a, b in tag_spans([labels[x] for x in s])]
        offset += len(s)
    assert got == want


def test_empty_batch_pieces():
    got = graph_split(tf.constant([], tf.string))
    assert got["words"].shape[0] == 0 and np.size(got["starts"].flat_values) == 0
