"""SQuAD reader (v1.1, v2.0, bad answers), windows and max-context rule, the answer round trip
char span -> token span -> offsets -> text on the real dev file, and n-best decoding."""

import json
import logging

import numpy as np
import pytest
from tests.data.finetune_tokenizer import tokenizer  # noqa: F401  (fixture)
from hypothesis import given, settings
from hypothesis import strategies as st

from bertkit.data import squad as S
from bertkit.data.common import doc_spans, max_context_owner

SQUAD_FILE = "squad/dev-v1.1.articles00-37.json"


@pytest.fixture(scope="module")
def squad(shared_data):
    return S.read_squad(shared_data / SQUAD_FILE)


def write_squad(tmp_path, qas, context="The cat sat on the mat.", version="2.0"):
    path = tmp_path / "s.json"
    data = {"version": version, "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data))
    return path


def qa(qid, text=None, start=None, impossible=False, question="What sat?"):
    answers = [] if text is None else [{"text": text, "answer_start": start}]
    return {"id": qid, "question": question, "answers": answers, "is_impossible": impossible}


# --- reader --------------------------------------------------------------------------------------

def test_read_real_file_and_article_split(shared_data, squad):
    assert len(squad) == 8582 and sum(len(e.answers) for e in squad) == 27471
    assert squad[0].title == "Super_Bowl_50" and not any(e.is_impossible for e in squad)
    train = S.read_squad(shared_data / SQUAD_FILE, articles=slice(0, 30))
    dev = S.read_squad(shared_data / SQUAD_FILE, articles=range(30, 38))
    assert len(train) + len(dev) == len(squad) and dev[-1].title == "Kenya"
    assert S.answers_by_id(squad[:1]) == {squad[0].qid: [a.text for a in squad[0].answers]}


def test_bad_answer_counted_and_reported(tmp_path, caplog):
    path = write_squad(tmp_path, [qa("q1", "cat", 4), qa("q2", "mat", 3), qa("q3", "dog", 4),
                                  qa("q4", None, None, impossible=True)])
    with pytest.raises(ValueError, match=r"s\.json: 2 answers whose text is not at answer_start "
                                         r"\(first: question q2: answer 'mat' at 3, context has ' ca'\)"
                                         r".*skip_bad_answers=True"):
        S.read_squad(path)
    with caplog.at_level(logging.WARNING, logger="bertkit.data"):
        examples = S.read_squad(path, skip_bad_answers=True)
    assert [e.qid for e in examples] == ["q1", "q4"] and "2 answers" in caplog.text


@pytest.mark.parametrize("text, match", [("", "file is empty"), ("{bad", r"s\.json:1: invalid JSON"),
                                         ('{"version": "1.1"}', "not a SQuAD file"),
                                         ('{"data": []}', "no questions"),
                                         ('{"data": [{"paragraphs": [{"qas": [{"id": "q"}]}]}]}',
                                          "article 0, paragraph 0: malformed .*'context'")])
def test_bad_files(tmp_path, text, match):
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        S.read_squad(path)


def test_bom_and_unanswered_v1(tmp_path):
    path = write_squad(tmp_path, [qa("q1", "cat", 4), qa("q2")], version="1.1")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with pytest.raises(ValueError, match="question q2: no answers and not marked is_impossible"):
        S.read_squad(path)


# --- windows and the max-context rule ------------------------------------------------------------

def reference_is_max_context(spans, cur_span_index, position):
    """google-research/bert run_squad.py `_check_is_max_context`, verbatim logic."""
    best_score, best_span_index = None, None
    for span_index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        num_left_context, num_right_context = position - start, end - position
        score = min(num_left_context, num_right_context) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_span_index = score, span_index
    return cur_span_index == best_span_index


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(1, 20), st.integers(1, 25))
def test_doc_spans_and_max_context(length, window, stride):
    spans = doc_spans(length, window, stride)
    covered = np.zeros(length, int)
    for start, n in spans:
        assert 0 < n <= window or length == 0
        covered[start: start + n] += 1
    assert (covered > 0).all() and spans[-1][0] + spans[-1][1] == length
    owner = max_context_owner(spans, length)
    for p in range(length):
        assert [reference_is_max_context(spans, k, p) for k in range(len(spans))] == \
            [owner[p] == k for k in range(len(spans))]


def test_char_span_to_token_span():
    offsets = [(0, 3), (4, 7), (7, 8), (9, 12)]  # "The cat. mat"
    assert S.char_span_to_token_span(offsets, 4, 8) == (1, 2)
    assert S.char_span_to_token_span(offsets, 3, 7) == (1, 1)  # leading space dropped
    assert S.char_span_to_token_span(offsets, 5, 6) == (1, 1)  # inside one piece
    assert S.char_span_to_token_span(offsets, 8, 9) is None  # whitespace only
    assert S.answer_positions_in_window((1, 2), 0, 4, 5) == (6, 7)
    assert S.answer_positions_in_window((1, 2), 2, 2, 5) == (0, 0)  # answer cut by the window


# --- the round trip on real data -----------------------------------------------------------------

def check_answer_text(context, offsets, first, last, answer):
    """Text of pieces first..last == the answer (modulo dropped whitespace), unless an answer
    boundary falls inside a piece ("gold" in "golden"): then the pieces cover it, nothing more."""
    start, end = int(offsets[first][0]), int(offsets[last][1])
    text = context[start:end]
    if " ".join(text.split()) == " ".join(answer.text.split()):
        return "exact"
    assert start <= answer.start and end >= answer.end, (answer, text)
    assert offsets[first][1] > answer.start and offsets[last][0] < answer.end, (answer, text)
    assert start < answer.start or end > answer.end, (answer, text)
    return "inside a piece"


def answer_round_trip(examples, tokenizer):
    outcomes = {"exact": 0, "inside a piece": 0}
    for e in examples:
        _, offsets, _ = tokenizer.tokenize_with_offsets(e.context)
        for a in e.answers:
            span = S.char_span_to_token_span(offsets, a.start, a.end)
            assert span is not None, a
            outcomes[check_answer_text(e.context, offsets, *span, a)] += 1
    assert outcomes["inside a piece"] <= 0.005 * sum(outcomes.values())
    return outcomes


def test_answer_round_trip_sample(squad, tokenizer):
    answer_round_trip(squad[::7], tokenizer)


@pytest.mark.slow
def test_answer_round_trip_all(squad, tokenizer):
    outcomes = answer_round_trip(squad, tokenizer)
    assert sum(outcomes.values()) == 27471


def featurize_round_trip(examples, tokenizer, **kw):
    """Every window's gold positions map back to the first answer; decoding one-hot logits at the
    gold positions gives the gold text back for (almost) every question."""
    f = S.featurize_squad(examples, tokenizer, **kw)
    assert f["input_ids"].shape[1] == kw.get("max_length", 384)
    has_answer = np.zeros(len(examples), bool)
    for n, ex_index in enumerate(f["example_index"]):
        e, s, t = examples[ex_index], f["start_positions"][n], f["end_positions"][n]
        context_positions = np.flatnonzero(f["offsets"][n][:, 0] >= 0)
        assert (f["token_type_ids"][n][context_positions] == 1).all()
        if s:
            check_answer_text(e.context, f["offsets"][n], s, t, e.answers[0])
            has_answer[ex_index] = True
    assert has_answer.all()  # answers (< 30 pieces) always fit in some window
    logits = np.full(f["input_ids"].shape, -10.0)
    start_logits, end_logits = logits.copy(), logits.copy()
    rows = np.arange(len(logits))
    start_logits[rows, f["start_positions"]] = 10.0
    end_logits[rows, f["end_positions"]] = 10.0
    predictions = S.postprocess_squad(examples, f, start_logits, end_logits)
    wrong = [e for e in examples
             if " ".join(predictions[e.qid]["answer"].split()) != " ".join(e.answers[0].text.split())]
    assert len(wrong) <= 0.005 * len(examples)
    for e in examples:
        p = predictions[e.qid]
        assert e.context[p["start"]: p["end"]] == p["answer"]
    return f


def test_features_default_windows(squad, tokenizer):
    f = featurize_round_trip(squad[::9], tokenizer)
    assert len(f["input_ids"]) > len(squad[::9])  # some contexts need 2+ windows


def test_features_tiny_windows(squad, tokenizer):
    sample = squad[::23]
    f = featurize_round_trip(sample, tokenizer, max_length=64, doc_stride=16, max_query_length=16)
    assert len(f["input_ids"]) > 5 * len(sample)


@pytest.mark.slow
def test_features_all(squad, tokenizer):
    featurize_round_trip(squad, tokenizer)
    featurize_round_trip(squad, tokenizer, max_length=96, doc_stride=32, max_query_length=24)


def test_max_context_partitions_the_context(squad, tokenizer):
    sample = squad[::40]
    f = S.featurize_squad(sample, tokenizer, max_length=64, doc_stride=20, max_query_length=16)
    for ex_index, e in enumerate(sample):
        rows = f["example_index"] == ex_index
        pieces = len(tokenizer.tokenize(e.context))
        # each context piece is max-context in exactly one window: counts add up
        assert f["token_is_max_context"][rows].sum() == pieces
        starts = f["offsets"][rows][f["token_is_max_context"][rows]][:, 0]
        assert len(np.unique(starts)) == pieces


# --- decoding ------------------------------------------------------------------------------------

def test_postprocess_constraints_and_v2_null(tmp_path, tokenizer):
    context = "The cat sat on the mat. " + "It was a very long and sunny afternoon indeed. " * 3
    path = write_squad(tmp_path, [qa("q1", "the mat", 15), qa("q2", None, None, impossible=True)],
                       context=context)
    examples = S.read_squad(path)
    f = S.featurize_squad(examples, tokenizer, max_length=48, doc_stride=16, max_query_length=8)
    assert (f["start_positions"][f["example_index"] == 1] == 0).all()  # unanswerable -> [CLS]
    rng = np.random.default_rng(0)
    start_logits, end_logits = rng.normal(size=(2, *f["input_ids"].shape))
    for n in range(len(start_logits)):
        if f["start_positions"][n]:
            start_logits[n, f["start_positions"][n]] = end_logits[n, f["end_positions"][n]] = 9.0
    start_logits[:, 0] = end_logits[:, 0] = -50.0
    out = S.postprocess_squad(examples, f, start_logits, end_logits, version_2=True)
    assert out["q1"]["answer"] == "the mat" and (out["q1"]["start"], out["q1"]["end"]) == (15, 22)
    assert out["q2"]["answer"] != ""  # null score far below: some span wins
    start_logits[f["example_index"] == 1, 0] = end_logits[f["example_index"] == 1, 0] = 50.0
    out = S.postprocess_squad(examples, f, start_logits, end_logits, version_2=True)
    assert out["q2"]["answer"] == "" and out["q2"]["start"] == -1
    assert out["q1"]["answer"] == "the mat"
    # max_answer_length and end >= start: the best raw pair (end before start) is rejected
    end_logits[:] = -9.0
    for n in range(len(end_logits)):
        if f["start_positions"][n]:
            end_logits[n, f["start_positions"][n] - 1] = 20.0
    for max_len in (1, 3):
        out = S.postprocess_squad(examples, f, start_logits, end_logits, max_answer_length=max_len)
        p = out["q1"]
        assert p["start"] >= 0 and len(tokenizer.tokenize(p["answer"])) <= max_len
        assert 0 < p["probability"] <= 1
