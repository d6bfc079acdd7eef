"""The NER metric wrapper equals direct seqeval calls (default and strict mode) on real CoNLL-2003
tags with perturbed predictions, and handles IOB1 by converting it to IOB2."""

import numpy as np
import pytest

from bertkit.data.ner import iob1_to_iob2, tag_spans
from bertkit.metrics import ner as M

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.scheme import IOB2  # noqa: E402

TYPES = ["PER", "LOC", "ORG", "MISC"]


@pytest.fixture(scope="module")
def gold_iob1(shared_data):
    """Raw IOB1 tags of eng.testa, read here independently of bertkit's reader."""
    sentences, current = [], []
    for line in (shared_data / "conll2003/eng.testa").read_text().split("\n"):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if current:
                sentences.append(current)
            current = []
        else:
            current.append(line.split()[-1])
    return sentences[::3]  # ~1,080 sentences: seqeval is slow, the full file is in the slow test


def perturb(sentences, seed, rate=0.08):
    """Type swaps, B/I flips, dropped and invented entity tags: valid and invalid sequences."""
    rng = np.random.default_rng(seed)
    out = []
    for tags in sentences:
        new = list(tags)
        for i, tag in enumerate(tags):
            if rng.random() >= rate:
                continue
            kind = rng.integers(4)
            if kind == 0 and tag != "O":
                new[i] = tag[:2] + TYPES[rng.integers(4)]
            elif kind == 1 and tag != "O":
                new[i] = ("B-" if tag[0] == "I" else "I-") + tag[2:]
            elif kind == 2:
                new[i] = "O"
            else:
                new[i] = ("B-", "I-")[rng.integers(2)] + TYPES[rng.integers(4)]
        out.append(new)
    return out


def direct(true, pred, mode):
    kw = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    return {"precision": seqeval_metrics.precision_score(true, pred, zero_division=0, **kw),
            "recall": seqeval_metrics.recall_score(true, pred, zero_division=0, **kw),
            "f1": seqeval_metrics.f1_score(true, pred, zero_division=0, **kw)}, \
        seqeval_metrics.classification_report(true, pred, output_dict=True, zero_division=0, **kw)


@pytest.mark.parametrize("mode, seed", [("default", 0), ("strict", 1)])
def test_equal_to_seqeval_iob2(gold_iob1, mode, seed):
    true = [iob1_to_iob2(t) for t in gold_iob1]
    pred = perturb(true, seed)
    ref_scores, ref_report = direct(true, pred, mode)
    assert M.ner_metrics(true, pred, mode=mode) == pytest.approx(ref_scores, abs=0)
    report = M.ner_report(true, pred, mode=mode)
    assert report.keys() == ref_report.keys() and set(TYPES) <= report.keys()
    for name in report:
        assert report[name] == pytest.approx(ref_report[name], abs=0)
    assert 0.5 < ref_scores["f1"] < 0.99


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_iob1_converted_first(gold_iob1, mode):
    pred1 = perturb(gold_iob1, seed=3)  # IOB1-style predictions (I- starts entities)
    ours = M.ner_metrics(gold_iob1, pred1, mode=mode, scheme="IOB1")
    ref, _ = direct([iob1_to_iob2(t) for t in gold_iob1], [iob1_to_iob2(p) for p in pred1], mode)
    assert ours == pytest.approx(ref, abs=0)
    if mode == "default":  # seqeval's default mode reads IOB1 the same way, with no conversion
        assert ours == pytest.approx(direct(gold_iob1, pred1, "default")[0], abs=0)
    # strict IOB2 on unconverted IOB1 would drop almost every gold entity: conversion matters
    if mode == "strict":
        unconverted = seqeval_metrics.classification_report(
            gold_iob1, gold_iob1, mode="strict", scheme=IOB2, output_dict=True)["micro avg"]["support"]
        ours = M.ner_report(gold_iob1, gold_iob1, mode="strict", scheme="IOB1")["micro avg"]["support"]
        assert unconverted < 0.05 * ours and ours == sum(len(tag_spans(iob1_to_iob2(t)))
                                                         for t in gold_iob1)


def test_matches_exact_span_counting(gold_iob1):
    """Strict mode == F1 over exact (sentence, type, first, last) entity matches of valid IOB2."""
    true = [iob1_to_iob2(t) for t in gold_iob1]
    pred = [iob1_to_iob2(p) for p in perturb(true, seed=5)]  # made valid IOB2
    gold_set = {(i, *s) for i, t in enumerate(true) for s in tag_spans(t)}
    pred_set = {(i, *s) for i, p in enumerate(pred) for s in tag_spans(p)}
    tp = len(gold_set & pred_set)
    p, r = tp / len(pred_set), tp / len(gold_set)
    ours = M.ner_metrics(true, pred, mode="strict")
    assert ours == pytest.approx({"precision": p, "recall": r, "f1": 2 * p * r / (p + r)})


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["default", "strict"])
def test_equal_to_seqeval_full_dev(shared_data, mode):
    from bertkit.data.ner import read_conll

    true = [e.tags for e in read_conll(shared_data / "conll2003/eng.testa")]
    assert sum(len(tag_spans(t)) for t in true) == 5942  # the published eng.testa entity count
    pred = perturb(true, seed=7)
    ref_scores, ref_report = direct(true, pred, mode)
    assert M.ner_metrics(true, pred, mode=mode) == pytest.approx(ref_scores, abs=0)
    report = M.ner_report(true, pred, mode=mode)
    assert report.keys() == ref_report.keys()
    for name in report:
        assert report[name] == pytest.approx(ref_report[name], abs=0)


@pytest.mark.parametrize("mode, scheme", [("default", "IOB2"), ("strict", "IOB2"), ("strict", "IOB1")])
def test_counts_summed_over_chunks_equal_seqeval(gold_iob1, mode, scheme):
    """`evaluate` scores big files from entity counts summed over chunks: the same numbers as
    seqeval on the whole file, also when predictions are invalid sequences."""
    true = gold_iob1 if scheme == "IOB1" else [iob1_to_iob2(t) for t in gold_iob1]
    pred = perturb(true, seed=11, rate=0.15)
    chunks = [M.ner_counts(true[i:i + 97], pred[i:i + 97], mode=mode, scheme=scheme) for i in range(0, len(true), 97)]
    summed = [sum(c[k] for c in chunks) for k in range(3)]
    assert summed == list(M.ner_counts(true, pred, mode=mode, scheme=scheme))
    want = M.ner_metrics(true, pred, mode=mode, scheme=scheme)  # seqeval's own scores
    assert M.metrics_from_counts(*summed) == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert summed[0] > 1000 and 0 < summed[2] < summed[1]


def test_bad_input():
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        M.ner_metrics([["O", "B-X"]], [["O"]])
    with pytest.raises(ValueError, match="mode must be one of"):
        M.ner_metrics([["O"]], [["O"]], mode="lenient")
