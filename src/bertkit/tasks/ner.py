"""Token classification (NER): CoNLL / JSONL in, entity-level P/R/F1 (seqeval) out."""

from __future__ import annotations

from ..data.ner import (NerExample, entities, featurize_ner, infer_tag_list, read_ner_file, split_words,
                        word_predictions)
from ..metrics.ner import ner_metrics
from .base import Task


class NerTask(Task):
    name = "ner"
    label_keys = ("labels",)
    metric = "f1"
    per_token = True
    defaults = {"max_length": 128, "stride": None}

    def read(self, path, labels=None, train=False):
        return read_ner_file(path)

    def labels_from(self, examples):
        return infer_tag_list(examples)

    def featurize(self, examples, tokenizer, labels):
        tagged = examples and examples[0].tags is not None
        return featurize_ner(examples, tokenizer, tag_list=labels if tagged else None,
                             max_length=self.options["max_length"], stride=self.options["stride"])

    def predicted_tags(self, examples, features, outputs, labels):
        words = word_predictions(features, outputs["logits"], examples)
        return [[labels[i] for i in sentence] for sentence in words]

    def score(self, examples, features, outputs, labels):
        predicted = self.predicted_tags(examples, features, outputs, labels)
        gold = [e.tags for e in examples]
        metrics = ner_metrics(gold, predicted, mode="default")
        strict = ner_metrics(gold, predicted, mode="strict")
        return {**metrics, **{f"strict_{k}": v for k, v in strict.items()}}

    def format_predictions(self, examples, features, outputs, labels):
        predicted = self.predicted_tags(examples, features, outputs, labels)
        # A line without words was given one placeholder word; it has no entities.
        return [{"entities": entities(text, spans, tags) if spans else []}
                for (text, spans), tags in zip(self._raw, predicted)]

    def examples_from_lines(self, lines):
        self._raw = [(line, split_words(line)) for line in lines]
        return [NerExample(words=[w for w, _, _ in spans] or ["."], source=f"<input>:{i + 1}")
                for i, (_, spans) in enumerate(self._raw)]
