"""Entity-level NER metrics: a thin wrapper over seqeval, the reference implementation.

mode="default" is seqeval's conlleval-compatible reading (an I-X after O starts an entity);
mode="strict" uses the IOB2 scheme and only counts well-formed entities. IOB1 input (CoNLL-2003)
is converted to IOB2 first (both gold and predicted), so B- tags mean what IOB1 means by them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.ner import iob1_to_iob2

MODES = ("default", "strict")
SCHEMES = ("IOB2", "IOB1")


def _prepare(true_tags, pred_tags, mode: str, scheme: str):
    if mode not in MODES or scheme not in SCHEMES:
        raise ValueError(f"mode must be one of {MODES} and scheme one of {SCHEMES}, "
                         f"got {mode!r}, {scheme!r}")
    true_tags, pred_tags = [list(t) for t in true_tags], [list(p) for p in pred_tags]
    if len(true_tags) != len(pred_tags):
        raise ValueError(f"{len(true_tags)} gold sentences but {len(pred_tags)} predicted")
    for i, (t, p) in enumerate(zip(true_tags, pred_tags)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: {len(t)} gold tags but {len(p)} predicted")
    if scheme == "IOB1":
        true_tags, pred_tags = [iob1_to_iob2(t) for t in true_tags], [iob1_to_iob2(p) for p in pred_tags]
    if mode == "strict":
        from seqeval.scheme import IOB2
        return true_tags, pred_tags, {"mode": "strict", "scheme": IOB2}
    return true_tags, pred_tags, {}


def ner_metrics(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], *,
                mode: str = "default", scheme: str = "IOB2") -> dict[str, float]:
    """Micro-averaged entity {"precision", "recall", "f1"} (fractions), as seqeval computes them."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    true_tags, pred_tags, kw = _prepare(true_tags, pred_tags, mode, scheme)
    return {name: float(fn(true_tags, pred_tags, zero_division=0, **kw))
            for name, fn in (("precision", precision_score), ("recall", recall_score),
                             ("f1", f1_score))}


def ner_counts(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], *,
               mode: str = "default", scheme: str = "IOB2") -> tuple[int, int, int]:
    """(gold entities, predicted entities, correct ones) as seqeval extracts them in `mode`
    (`get_entities`, or `seqeval.scheme.Entities` for strict). Entities never cross sentences, so
    the counts of a file are the sums of its chunks' (how `evaluate` scores big files in bounded
    memory); `metrics_from_counts` gives `ner_metrics`' numbers from them."""
    true_tags, pred_tags, kw = _prepare(true_tags, pred_tags, mode, scheme)
    if mode == "strict":
        from seqeval.scheme import Entities

        def extract(tags):
            return {e.to_tuple() for sentence in Entities(tags, kw["scheme"], False).entities for e in sentence}
    else:
        from seqeval.metrics.sequence_labeling import get_entities

        def extract(tags):
            return set(get_entities(tags))
    gold, predicted = extract(true_tags), extract(pred_tags)
    return len(gold), len(predicted), len(gold & predicted)


def metrics_from_counts(gold: int, predicted: int, correct: int) -> dict[str, float]:
    """Micro {"precision", "recall", "f1"} of entity counts; 0.0 where a ratio is undefined, as
    seqeval's zero_division=0."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def ner_report(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], *,
               mode: str = "default", scheme: str = "IOB2") -> dict[str, dict[str, float]]:
    """Per entity type (and micro/macro/weighted avg): precision, recall, f1-score, support."""
    from seqeval.metrics import classification_report

    true_tags, pred_tags, kw = _prepare(true_tags, pred_tags, mode, scheme)
    report = classification_report(true_tags, pred_tags, output_dict=True, zero_division=0, **kw)
    return {name: {k: float(v) for k, v in scores.items()} for name, scores in report.items()}
