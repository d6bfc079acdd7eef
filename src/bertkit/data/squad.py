"""Extractive QA data: SQuAD v1.1 / v2.0 reader, windowed featurizer, n-best answer decoding.

A feature is one window `[CLS] question [SEP] context piece window [SEP]`. Contexts longer than
the room left by the question are covered by overlapping windows `doc_stride` pieces apart; the
answer is located in each window through the tokenizer's character offsets into the original
context, and predictions are mapped back to character spans of that original context.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Sequence

import numpy as np

from .common import doc_spans, make_dataset, max_context_owner, pad_rows  # noqa: F401

log = logging.getLogger("bertkit.data")

LABEL_KEYS = ("start_positions", "end_positions")


@dataclasses.dataclass(frozen=True)
class SquadAnswer:
    text: str
    start: int  # character offset into the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclasses.dataclass(frozen=True)
class SquadExample:
    qid: str
    question: str
    context: str
    answers: tuple[SquadAnswer, ...] = ()
    is_impossible: bool = False  # v2.0 unanswerable question
    title: str = ""


# --- reader ----------------------------------------------------------------------------------------

def read_squad(path: str | os.PathLike, *, skip_bad_answers: bool = False,
               articles: slice | Iterable[int] | None = None) -> list[SquadExample]:
    """Questions of a SQuAD v1.1 or v2.0 JSON file, optionally of some articles only (by index).

    Every answer's text must be at its answer_start in the context. Bad answers are counted and
    reported: ValueError, or with `skip_bad_answers=True` a warning and the answers (and any
    question left without an answer) dropped.
    """
    data = _load_articles(path)
    if articles is not None:
        data = data[articles] if isinstance(articles, slice) else [data[i] for i in articles]
    examples, bad = [], []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article.get("paragraphs", ())):
            try:
                for qa in paragraph.get("qas", ()):
                    example, bad_answers = parse_question(qa, paragraph["context"],
                                                           article.get("title", ""))
                    bad += bad_answers
                    if example is not None:
                        examples.append(example)
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}: article {a}, paragraph {p}: malformed SQuAD entry "
                                 f"({type(e).__name__}: {e})") from None
    if bad:
        _report_bad_answers(path, bad, skip_bad_answers)
    if not examples:
        raise ValueError(f"{path}: no questions")
    return examples


def _load_articles(path) -> list[dict]:
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    if not text.strip():
        raise ValueError(f"{path}: file is empty")
    try:
        dataset = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise ValueError(f"{path}: not a SQuAD file (expected an object with a 'data' list)")
    return dataset["data"]


def parse_question(qa: dict, context: str, title: str):
    """(SquadExample or None if no valid answer is left, list of bad answer descriptions)."""
    impossible = bool(qa.get("is_impossible", False))
    good, bad = [], []
    for answer in qa.get("answers", ()):
        text, start = answer["text"], int(answer["answer_start"])
        if context[start: start + len(text)] == text:
            good.append(SquadAnswer(text, start))
        else:
            found = context[start: start + len(text)]
            bad.append(f"question {qa['id']}: answer {text!r} at {start}, context has {found!r}")
    if not impossible and not good:
        if not bad:
            bad.append(f"question {qa['id']}: no answers and not marked is_impossible")
        return None, bad
    return SquadExample(qa["id"], qa["question"], context, tuple(good), impossible, title), bad


def _report_bad_answers(path, bad: list[str], skip: bool) -> None:
    message = f"{path}: {len(bad)} answers whose text is not at answer_start (first: {bad[0]})"
    if not skip:
        raise ValueError(message + "; pass skip_bad_answers=True to drop them with a warning")
    log.warning("%s; skipped them (questions left without an answer are dropped)", message)


# --- features: pure helpers ------------------------------------------------------------------------

def char_span_to_token_span(offsets: Sequence[tuple[int, int]], start_char: int,
                            end_char: int) -> tuple[int, int] | None:
    """First and last piece overlapping the characters [start_char, end_char), or None.

    Offsets are (start, end) character offsets of each context piece. Characters the tokenizer
    drops (whitespace, control characters) belong to no piece, so an answer that starts or ends
    with them still maps to the pieces of its visible text. None: no piece overlaps the answer.
    """
    offsets = np.asarray(offsets).reshape(-1, 2)
    after_start = np.nonzero(offsets[:, 1] > start_char)[0]
    before_end = np.nonzero(offsets[:, 0] < end_char)[0]
    if not len(after_start) or not len(before_end) or after_start[0] > before_end[-1]:
        return None
    first, last = int(after_start[0]), int(before_end[-1])
    return first, last


def answer_positions_in_window(token_span: tuple[int, int] | None, window_start: int,
                               window_length: int, context_offset: int) -> tuple[int, int]:
    """Start/end positions of the answer in a window's input ids, or (0, 0) (the [CLS] token).

    Why [CLS]: a window that does not contain the whole answer must teach the model "no answer
    here" rather than a truncated span (BERT's SQuAD recipe, also v2.0's no-answer target).
    `context_offset` is where the window's context pieces begin (after [CLS] question [SEP]).
    """
    if token_span is None:
        return 0, 0
    first, last = token_span
    if first < window_start or last >= window_start + window_length:
        return 0, 0
    return first - window_start + context_offset, last - window_start + context_offset


def _tokenize_context(context: str, tokenizer, cache: dict):
    """(piece ids, offsets [n, 2]) of a context; contexts are shared by ~5 questions, so cached."""
    if context not in cache:
        pieces, offsets, _ = tokenizer.tokenize_with_offsets(context)
        ids = list(tokenizer.convert_tokens_to_ids(pieces))
        cache[context] = (ids, np.asarray(offsets, dtype=np.int32).reshape(-1, 2))
    return cache[context]


# --- features --------------------------------------------------------------------------------------

def featurize_squad(examples: Sequence[SquadExample], tokenizer, *, max_length: int = 384,
                    doc_stride: int = 128, max_query_length: int = 64) -> dict[str, np.ndarray]:
    """Examples -> one feature row per (question, context window).

    Returns int32 arrays input_ids, token_type_ids, attention_mask [N, max_length];
    start_positions, end_positions [N] (first answer; 0 = [CLS] when the window lacks the whole
    answer or the question is unanswerable); example_index [N]; offsets [N, max_length, 2]
    (character span in the context, -1 outside the context); token_is_max_context
    [N, max_length] bool (the window where that context piece has the most context).
    """
    rows: dict[str, list] = {k: [] for k in ("input_ids", "token_type_ids", "offsets",
                                             "token_is_max_context", "start_positions",
                                             "end_positions", "example_index")}
    cache: dict = {}
    unmapped = 0
    for ex_index, example in enumerate(examples):
        query = list(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(example.question)))
        query = query[:max_query_length]
        ctx_ids, ctx_offsets = _tokenize_context(example.context, tokenizer, cache)
        token_span = None
        if example.answers and not example.is_impossible:
            first = example.answers[0]
            token_span = char_span_to_token_span(ctx_offsets, first.start, first.end)
            unmapped += token_span is None
        for row in _example_windows(query, ctx_ids, ctx_offsets, token_span, tokenizer,
                                    max_length, doc_stride):
            for key, value in row.items():
                rows[key].append(value)
            rows["example_index"].append(ex_index)
    if unmapped:
        log.warning("%d answers cover no context piece; their windows are labelled [CLS]", unmapped)
    return _stack_squad_rows(rows, max_length, tokenizer.pad_id)


def _example_windows(query, ctx_ids, ctx_offsets, token_span, tokenizer, max_length, doc_stride):
    """Yield one row per context window of one question (see featurize_squad)."""
    room = max_length - len(query) - 3  # [CLS] query [SEP] window [SEP]
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for the context after a "
                         f"{len(query)}-piece question")
    spans = doc_spans(len(ctx_ids), room, doc_stride)
    owner = max_context_owner(spans, len(ctx_ids))
    context_offset = len(query) + 2
    for k, (start, length) in enumerate(spans):
        ids = [tokenizer.cls_id, *query, tokenizer.sep_id, *ctx_ids[start: start + length],
               tokenizer.sep_id]
        offsets = np.full((len(ids), 2), -1, dtype=np.int32)
        offsets[context_offset: context_offset + length] = ctx_offsets[start: start + length]
        is_max = np.zeros(len(ids), dtype=bool)
        is_max[context_offset: context_offset + length] = owner[start: start + length] == k
        start_pos, end_pos = answer_positions_in_window(token_span, start, length, context_offset)
        yield {"input_ids": ids, "token_type_ids": [0] * context_offset + [1] * (length + 1),
               "offsets": offsets, "token_is_max_context": is_max,
               "start_positions": start_pos, "end_positions": end_pos}


def _stack_squad_rows(rows: dict[str, list], max_length: int, pad_id: int) -> dict[str, np.ndarray]:
    n = len(rows["input_ids"])
    offsets = np.full((n, max_length, 2), -1, dtype=np.int32)
    is_max = np.zeros((n, max_length), dtype=bool)
    for i, (o, m) in enumerate(zip(rows["offsets"], rows["token_is_max_context"])):
        offsets[i, : len(o)] = o
        is_max[i, : len(m)] = m
    return {
        "input_ids": pad_rows(rows["input_ids"], max_length, pad_id),
        "token_type_ids": pad_rows(rows["token_type_ids"], max_length, 0),
        "attention_mask": pad_rows([[1] * len(r) for r in rows["input_ids"]], max_length, 0),
        "start_positions": np.array(rows["start_positions"], dtype=np.int32),
        "end_positions": np.array(rows["end_positions"], dtype=np.int32),
        "example_index": np.array(rows["example_index"], dtype=np.int32),
        "offsets": offsets,
        "token_is_max_context": is_max,
    }


# --- post-processing -------------------------------------------------------------------------------

def postprocess_squad(examples: Sequence[SquadExample], features: dict[str, np.ndarray],
                      start_logits: np.ndarray, end_logits: np.ndarray, *, n_best_size: int = 20,
                      max_answer_length: int = 30, version_2: bool = False,
                      null_score_diff_threshold: float = 0.0) -> dict[str, dict]:
    """Best answer per question from the start/end logits [N, L] of all its windows.

    Returns {qid: {"answer", "start", "end" (characters in the context), "score" (start + end
    logit), "probability" (softmax over the n best), "null_score"}}. Candidate spans: the n_best
    start and end pieces of each window, inside the context, end >= start, at most
    max_answer_length pieces, starting at a piece this window has max context for. v2.0: the
    answer is "" (start = end = -1) when the best null score ([CLS] start + end, minimum over the
    windows) beats the best span by more than `null_score_diff_threshold`.
    """
    by_example: dict[int, list[int]] = {}
    for n, ex_index in enumerate(features["example_index"]):
        by_example.setdefault(int(ex_index), []).append(n)
    results = {}
    for ex_index, example in enumerate(examples):
        candidates, null_score = [], np.inf
        for n in by_example.get(ex_index, ()):
            null_score = min(null_score, float(start_logits[n][0] + end_logits[n][0]))
            # Padding positions must not take n-best slots: their logits depend on how wide the
            # batch was padded, and answers must not depend on batching.
            real = features["attention_mask"][n] > 0
            candidates += _span_candidates(np.where(real, start_logits[n], -np.inf),
                                           np.where(real, end_logits[n], -np.inf), features["offsets"][n],
                                           features["token_is_max_context"][n], n_best_size,
                                           max_answer_length)
        results[example.qid] = _best_answer(example.context, candidates, null_score, n_best_size,
                                            version_2, null_score_diff_threshold)
    return results


def _span_candidates(start_logits, end_logits, offsets, is_max_context, n_best_size,
                     max_answer_length) -> list[tuple[float, int, int]]:
    """(score, start char, end char) for the valid (start, end) pairs among the n best of each.

    Why only starts with max context: a span inside the overlap of two windows is scored in the
    window where it sees the most text (as google-research/bert does), and is not proposed twice.
    """
    starts = np.argsort(start_logits)[::-1][:n_best_size]
    ends = np.argsort(end_logits)[::-1][:n_best_size]
    s, e = np.meshgrid(starts, ends, indexing="ij")
    valid = ((offsets[s, 0] >= 0) & (offsets[e, 0] >= 0) & is_max_context[s]
             & (e >= s) & (e - s + 1 <= max_answer_length))
    s, e = s[valid], e[valid]
    scores = start_logits[s] + end_logits[e]
    return [(float(sc), int(offsets[a, 0]), int(offsets[b, 1])) for sc, a, b in zip(scores, s, e)]


def _best_answer(context, candidates, null_score, n_best_size, version_2, threshold) -> dict:
    """The top candidate as a result dict, or the null answer ("" at -1) when v2.0 prefers it."""
    candidates = sorted(candidates, key=lambda c: -c[0])[:n_best_size]
    # probabilities over the n best (and, for v2.0, the null answer), as in run_squad.py's n-best
    probs = _softmax([c[0] for c in candidates] + ([null_score] if version_2 else []))
    null = {"answer": "", "start": -1, "end": -1, "score": null_score,
            "probability": float(probs[-1]) if version_2 else 0.0, "null_score": null_score}
    if not candidates or (version_2 and null_score - candidates[0][0] > threshold):
        return null
    score, start, end = candidates[0]
    return {"answer": context[start:end], "start": start, "end": end, "score": score,
            "probability": float(probs[0]), "null_score": null_score}


def _softmax(scores: list[float]) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


def answers_by_id(examples: Sequence[SquadExample]) -> dict[str, list[str]]:
    """Gold answer texts per question id (empty list: unanswerable), for bertkit.metrics.squad."""
    return {e.qid: [] if e.is_impossible else [a.text for a in e.answers] for e in examples}
