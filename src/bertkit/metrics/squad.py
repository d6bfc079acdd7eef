"""SQuAD metrics, following the official evaluation scripts line for line in behaviour.

v1.1 (`evaluate-v1.1.py`): answers are normalised (lower case, punctuation and the articles
a/an/the removed, whitespace collapsed); EM and token F1 take the max over the gold answers and
are averaged over all gold questions, in percent. A question without a prediction scores 0.
v2.0 (`evaluate-v2.0.py`): same normalisation, but an empty prediction is an answer "no answer",
unanswerable questions have gold [""], and F1 of empty vs non-empty is 0 (of empty vs empty, 1);
scores are also broken down into HasAns (answerable) and NoAns questions.
"""

from __future__ import annotations

import numpy as np

import collections
import re
import string
from collections.abc import Mapping, Sequence

_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation, drop the articles a/an/the, collapse whitespace (official)."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """v1.1 token F1 between normalised answers (0 if no token in common, also when both empty)."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    num_same = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred_tokens), num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_v1_metrics(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """{"exact_match", "f1"} in percent over the questions of `gold` ({qid: answer texts})."""
    em = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue  # the official script: "Unanswered question ... will receive score 0."
        em += max(exact_match_score(predictions[qid], a) for a in answers)
        f1 += max(f1_score(predictions[qid], a) for a in answers)
    total = max(len(gold), 1)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}


def _v2_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def _v2_f1(gold: str, prediction: str) -> float:
    gold_tokens, pred_tokens = _v2_tokens(gold), _v2_tokens(prediction)
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)  # no-answer agreement
    return f1_score(prediction, gold)


def squad_v2_metrics(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """{"exact_match", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_..."}.

    `gold` maps qid -> answer texts, empty for unanswerable questions; a prediction of "" means
    no answer. Percent, like the official script (without its na_prob threshold search: apply the
    null threshold when decoding, see bertkit.data.squad.postprocess_squad). Missing predictions
    score 0 (the official v2.0 script would fail on them).
    """
    exact, f1 = {}, {}
    for qid, answers in gold.items():
        golds = [a for a in answers if normalize_answer(a)] or [""]
        pred = predictions.get(qid)
        exact[qid] = 0.0 if pred is None else max(float(normalize_answer(a) == normalize_answer(pred))
                                                  for a in golds)
        f1[qid] = 0.0 if pred is None else max(_v2_f1(a, pred) for a in golds)
    groups = {"": list(gold), "HasAns_": [q for q, a in gold.items() if a],
              "NoAns_": [q for q, a in gold.items() if not a]}
    out: dict[str, float] = {}
    for prefix, qids in groups.items():
        if prefix and not qids:
            continue
        n = max(len(qids), 1)
        out[f"{prefix}exact" if prefix else "exact_match"] = 100.0 * sum(exact[q] for q in qids) / n
        out[f"{prefix}f1"] = 100.0 * sum(f1[q] for q in qids) / n
        out[f"{prefix}total"] = float(len(qids))
    return out


def best_null_threshold(gold: Mapping[str, Sequence[str]], span_answers: Mapping[str, str],
                        null_diffs: Mapping[str, float]) -> tuple[float, float]:
    """The no-answer threshold with the best overall F1, as the official evaluate-v2.0.py searches
    it (`find_best_thresh`, its `best_f1_thresh`): a question is answered with its best span when
    its null score diff (null score - best span score) is at most the threshold, else with "".

    Args: gold qid -> answer texts (empty: unanswerable); span_answers qid -> the best non-null
    span ("" if there is none); null_diffs qid -> null score - best span score (inf without a span).
    Returns (threshold, best F1 in percent). Questions with equal diffs are switched together (the
    official script walks them one by one and may stop between two of them). If answering no
    question is best, the threshold is just below the smallest diff.
    """
    qids = sorted((q for q in gold if np.isfinite(null_diffs.get(q, np.inf))), key=lambda q: null_diffs[q])
    score = best = float(sum(1 for answers in gold.values() if not answers))  # all answered "" first
    threshold = (null_diffs[qids[0]] - 1.0) if qids else 0.0
    for i, qid in enumerate(qids):
        answers = gold[qid]
        if answers:
            golds = [a for a in answers if normalize_answer(a)] or [""]
            score += max(_v2_f1(a, span_answers[qid]) for a in golds)
        elif span_answers[qid]:
            score -= 1.0
        last_of_tie = i + 1 == len(qids) or null_diffs[qids[i + 1]] != null_diffs[qid]
        if last_of_tie and score > best:
            best, threshold = score, float(null_diffs[qid])
    return threshold, 100.0 * best / max(len(gold), 1)
