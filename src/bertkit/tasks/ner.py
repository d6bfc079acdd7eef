"""Token classification (NER): CoNLL / JSONL in, entity-level P/R/F1 (seqeval) out."""

from __future__ import annotations

import numpy as np

from ..data.ner import (NerExample, detect_scheme, entities, featurize_ner, infer_tag_list, iter_ner_file,
                        read_ner_file, split_words, word_predictions)
from ..metrics.ner import metrics_from_counts, ner_counts
from .task import MAX_LENGTH_FLAG, Task, TaskFlag, chunks_of, register


@register
class NerTask(Task):
    name = "ner"
    architecture = "BertForTokenClassification"
    head_prefix = "classifier."
    uses_pooler = False
    label_keys = ("labels",)
    metric = "f1"
    report_metrics = ("f1", "precision", "recall")
    per_token = True
    # tag_scheme "file": train on the tags as the file gives them (IOB1 for CoNLL-2003), as HF
    # transformers and Model Garden do; "iob2": convert IOB1 to IOB2 first. On CoNLL-2003 with MiniLM
    # the file's own tags learnt faster (docs/parity.md).
    defaults = {"max_length": 128, "stride": None, "tag_scheme": "file"}
    blank_prediction = {"entities": []}
    serving_signatures = {"texts": "serving_default"}
    flags = (MAX_LENGTH_FLAG,
             TaskFlag("tag_scheme", "train on the tags as the file gives them (file) or convert IOB1 to IOB2",
                      choices=("file", "iob2")))

    @classmethod
    def model_class(cls):
        from ..model.models import BertForTokenClassification

        return BertForTokenClassification

    @classmethod
    def build_loss(cls):
        from ..training.losses import TokenClassificationLoss

        return TokenClassificationLoss()

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.ner import NerModule

        return NerModule(model, tokenizer, labels, max_length=self.options["max_length"],
                         stride=self.options.get("stride"))

    def read(self, path, labels=None, train=False):
        return read_ner_file(path, to_iob2=self._to_iob2())

    def read_chunks(self, path, labels, size):
        """Lists of at most `size` sentences, the file read as they are taken (bounded memory)."""
        return chunks_of(iter_ner_file(path, to_iob2=self._to_iob2()), size)

    def _to_iob2(self) -> bool:
        scheme = self.options["tag_scheme"]
        if scheme not in ("file", "iob2"):
            raise ValueError(f"--tag-scheme must be 'file' or 'iob2', got {scheme!r}")
        return scheme == "iob2"

    def labels_from(self, examples):
        return infer_tag_list(examples)

    def featurize(self, examples, tokenizer, labels):
        tagged = examples and examples[0].tags is not None
        return featurize_ner(examples, tokenizer, tag_list=labels if tagged else None,
                             max_length=self.options["max_length"], stride=self.options["stride"])

    def predicted_tags(self, examples, features, outputs, labels):
        words = word_predictions(features, outputs["logits"], examples)
        return [[labels[i] for i in sentence] for sentence in words]

    def evaluation_rows(self, examples, features, outputs, labels):
        """Entity counts of the chunk (gold, predicted, correct) as seqeval extracts them:
        int64 [1, 10] = default mode, strict mode with the IOB1 -> IOB2 conversion, strict mode
        as tagged, and whether the gold tags read as IOB1 (`detect_scheme`), so `score_rows` picks
        the strict counts of the file's scheme once the whole file has been seen."""
        gold = [e.tags for e in examples]
        predicted = self.predicted_tags(examples, features, outputs, labels)
        counts = (*ner_counts(gold, predicted, mode="default"),  # the same entities in IOB1 and IOB2
                  *ner_counts(gold, predicted, mode="strict", scheme="IOB1"),
                  *ner_counts(gold, predicted, mode="strict", scheme="IOB2"),
                  detect_scheme(gold) == "IOB1")
        return {"counts": np.array([counts], np.int64)}

    def score_rows(self, rows, labels):
        counts = rows["counts"].sum(axis=0)
        strict = counts[3:6] if counts[9] else counts[6:9]
        return {**metrics_from_counts(*map(int, counts[:3])),
                **{f"strict_{k}": v for k, v in metrics_from_counts(*map(int, strict)).items()}}

    def format_predictions(self, examples, features, outputs, labels):
        predicted = self.predicted_tags(examples, features, outputs, labels)
        # A line without words was given one placeholder word; it has no entities.
        return [{"entities": entities(text, spans, tags) if spans else []}
                for (text, spans), tags in zip(self._raw, predicted)]

    @classmethod
    def format_served(cls, outputs, n, labels):
        results = []
        for i in range(n):
            k = int(outputs["num_entities"][i])
            results.append({"entities": [
                {"type": outputs["entity_types"][i, j].decode("utf-8"), "start": int(outputs["entity_starts"][i, j]),
                 "end": int(outputs["entity_ends"][i, j]), "text": outputs["entity_texts"][i, j].decode("utf-8")}
                for j in range(k)]})
        return results

    def examples_from_lines(self, lines, sources=None):
        sources = sources or [f"<input>:{i + 1}" for i in range(len(lines))]
        self._raw = [(line, split_words(line)) for line in lines]
        return [NerExample(words=[w for w, _, _ in spans] or ["."], source=where)
                for (_, spans), where in zip(self._raw, sources)]
