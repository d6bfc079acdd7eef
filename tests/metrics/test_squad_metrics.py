"""SQuAD EM/F1 equal the official evaluate-v1.1.py / evaluate-v2.0.py logic on perturbed predictions.

The reference functions below are the official scripts' code (transcribed; only printing removed)."""

import collections
import json
import re
import string

import numpy as np
import pytest

from bertkit.metrics import squad as M


# --- official evaluate-v1.1.py -------------------------------------------------------------------

def ref_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def ref_f1_score(prediction, ground_truth):
    prediction_tokens = ref_normalize_answer(prediction).split()
    ground_truth_tokens = ref_normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def ref_exact_match_score(prediction, ground_truth):
    return ref_normalize_answer(prediction) == ref_normalize_answer(ground_truth)


def ref_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    return max(metric_fn(prediction, ground_truth) for ground_truth in ground_truths)


def ref_evaluate_v1(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))
                prediction = predictions[qa['id']]
                exact_match += ref_metric_max_over_ground_truths(
                    ref_exact_match_score, prediction, ground_truths)
                f1 += ref_metric_max_over_ground_truths(ref_f1_score, prediction, ground_truths)
    return {'exact_match': 100.0 * exact_match / total, 'f1': 100.0 * f1 / total}


# --- official evaluate-v2.0.py (no na_prob file: all na_probs 0, threshold 1.0) ----------------

def ref_get_tokens(s):
    if not s:
        return []
    return ref_normalize_answer(s).split()


def ref_compute_exact(a_gold, a_pred):
    return int(ref_normalize_answer(a_gold) == ref_normalize_answer(a_pred))


def ref_compute_f1(a_gold, a_pred):
    gold_toks = ref_get_tokens(a_gold)
    pred_toks = ref_get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def ref_evaluate_v2(dataset, preds):
    qid_to_has_ans = {qa['id']: bool(qa['answers'])
                      for article in dataset for p in article['paragraphs'] for qa in p['qas']}
    exact_scores, f1_scores = {}, {}
    for article in dataset:
        for p in article['paragraphs']:
            for qa in p['qas']:
                qid = qa['id']
                gold_answers = [a['text'] for a in qa['answers'] if ref_normalize_answer(a['text'])]
                if not gold_answers:
                    gold_answers = ['']
                a_pred = preds[qid]
                exact_scores[qid] = max(ref_compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qid] = max(ref_compute_f1(a, a_pred) for a in gold_answers)

    def make_eval_dict(qid_list=None):
        qid_list = qid_list or list(exact_scores)
        total = len(qid_list)
        return {'exact': 100.0 * sum(exact_scores[k] for k in qid_list) / total,
                'f1': 100.0 * sum(f1_scores[k] for k in qid_list) / total, 'total': total}

    out = make_eval_dict()
    for prefix, has in (('HasAns', True), ('NoAns', False)):
        qids = [k for k, v in qid_to_has_ans.items() if v == has]
        if qids:
            out.update({f'{prefix}_{k}': v for k, v in make_eval_dict(qids).items()})
    return out


def ref_find_best_thresh(preds, scores, na_probs, qid_to_has_ans):
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    for i, qid in enumerate(qid_list):
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        else:
            if preds[qid]:
                diff = -1
            else:
                diff = 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(shared_data):
    with open(shared_data / "squad/dev-v1.1.articles00-37.json") as f:
        return json.load(f)["data"]


def gold_of(dataset):
    return {qa["id"]: [a["text"] for a in qa["answers"]]
            for article in dataset for p in article["paragraphs"] for qa in p["qas"]}


def perturb(answers, context, rng):
    """A prediction near one gold answer: the kinds of errors that exercise normalisation and F1."""
    a = answers[rng.integers(len(answers))] if answers else ""
    words = context.split()
    kind = rng.integers(10)
    if kind == 0:
        return a.upper() + "."
    if kind == 1:
        return "The " + a + " ,"
    if kind == 2:
        return " ".join(a.split()[:-1])
    if kind == 3:
        return a + " " + words[rng.integers(len(words))]
    if kind == 4:
        return " ".join(words[i] for i in rng.integers(len(words), size=rng.integers(1, 6)))
    if kind == 5:
        return ""
    if kind == 6:
        return "an  " + a.replace(" ", "\t  ")
    if kind == 7:
        return a.replace("the", "a").replace(",", "")
    return a


def perturbed_predictions(dataset, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    predictions = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                if rng.random() >= missing:
                    predictions[qa["id"]] = perturb([a["text"] for a in qa["answers"]], p["context"], rng)
    return predictions


# --- tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed, missing, articles", [(0, 0.0, slice(None)), (1, 0.03, slice(1, None, 3))])
def test_v1_equal_to_official(dataset, seed, missing, articles):
    dataset = dataset[articles]
    predictions = perturbed_predictions(dataset, seed, missing)
    ours = M.squad_v1_metrics(gold_of(dataset), predictions)
    ref = ref_evaluate_v1(dataset, predictions)
    assert ours == pytest.approx(ref, abs=1e-9)
    assert 20 < ref["exact_match"] < 90  # the perturbations really change the scores


def test_v1_gold_is_perfect(dataset):
    gold = gold_of(dataset)
    assert M.squad_v1_metrics(gold, {q: a[0] for q, a in gold.items()}) == {"exact_match": 100.0, "f1": 100.0}


def test_v1_functions_on_edge_strings():
    cases = [("the", "The"), ("", ""), ("A  cat!", "cat"), ("Über-cool", "über cool"), ("1,000", "1000"),
             ("an apple a day", "apple day"), ("x y y", "y x")]
    for pred, gold in cases:
        assert M.normalize_answer(pred) == ref_normalize_answer(pred)
        assert M.exact_match_score(pred, gold) == ref_exact_match_score(pred, gold)
        assert M.f1_score(pred, gold) == pytest.approx(ref_f1_score(pred, gold))


def test_v2_equal_to_official(dataset):
    # v2.0-style data from the real file: every 4th question made unanswerable
    v2 = json.loads(json.dumps(dataset[::3]))
    qas = [qa for article in v2 for p in article["paragraphs"] for qa in p["qas"]]
    for qa in qas[::4]:
        qa["answers"], qa["is_impossible"] = [], True
    predictions = perturbed_predictions(v2, seed=2)
    ours = M.squad_v2_metrics(gold_of(v2), predictions)
    ref = ref_evaluate_v2(v2, predictions)
    assert ours.pop("exact_match") == pytest.approx(ref.pop("exact"))
    assert ours == pytest.approx(ref)
    assert ref["NoAns_total"] == len(qas[::4]) and 0 < ref["NoAns_exact"] < 100


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_threshold_search_equals_official_best_f1_thresh(shared_data, seed):
    """On the real SQuAD 2.0 questions: best span texts near the gold (or distractors for the
    unanswerable ones) and distinct random null score diffs; bertkit's search gives the official
    script's best_f1 and best_f1_thresh (its na_probs are our diffs)."""
    from bertkit.metrics.squad import best_null_threshold

    with open(shared_data / "squad2" / "dev-v2.0-cs224n.articles00-09_13.json") as f:
        dataset = json.load(f)["data"]
    rng = np.random.default_rng(seed)
    spans, diffs = {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                source = qa["answers"] or qa.get("plausible_answers") or [{"text": ""}]
                span = perturb([a["text"] for a in source], p["context"], rng)
                # a span that normalises to nothing ("The ,") is no answer to the metric but an answer to
                # the official search, which looks at the raw text: keep such spans out of the comparison
                spans[qa["id"]] = span if ref_normalize_answer(span) else "x"
                # answerable questions lean negative (answer), unanswerable positive (null)
                diffs[qa["id"]] = float(rng.normal(-1.0 if qa["answers"] else 1.0, 2.0))
    gold = {qa["id"]: [a["text"] for a in qa["answers"]]
            for article in dataset for p in article["paragraphs"] for qa in p["qas"]}
    qid_to_has_ans = {q: bool(a) for q, a in gold.items()}
    f1_scores = {}
    for q, answers in gold.items():
        golds = [a for a in answers if ref_normalize_answer(a)] or [""]
        f1_scores[q] = max(ref_compute_f1(a, spans[q]) for a in golds)
    want_f1, want_thresh = ref_find_best_thresh(spans, f1_scores, diffs, qid_to_has_ans)
    threshold, best_f1 = best_null_threshold(gold, spans, diffs)
    assert (threshold, best_f1) == pytest.approx((want_thresh, want_f1), abs=1e-9)
    # applying the threshold scores that F1 with the metric itself
    predictions = {q: spans[q] if diffs[q] <= threshold else "" for q in gold}
    assert M.squad_v2_metrics(gold, predictions)["f1"] == pytest.approx(best_f1, abs=1e-9)
