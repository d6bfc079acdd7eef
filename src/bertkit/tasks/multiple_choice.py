"""Multiple choice (a question or context and N candidate answers -> the index of the right one):
CommonsenseQA / plain JSON Lines or SWAG-layout CSV in, accuracy out.

The shared encoder scores each `[CLS] context [SEP] choice [SEP]` sequence with a 1-unit head on
its pooled output, and a softmax over the choices gives the probabilities (cross-entropy over the
choices in training). Saved as HF's BertForMultipleChoice, which loads it with the same logits.
CommonsenseQA (`commonsenseqa/*.jsonl`, 5 choices):

    bertkit finetune multiple-choice --model MODEL --train train.jsonl --dev dev.jsonl --out csqa

`predict` takes one question per line: a JSON object in any reader layout, or TAB-separated
`context<TAB>choice 1<TAB>choice 2...`; questions may have different numbers of choices.
"""

from __future__ import annotations

import json

import numpy as np

from ..data.multiple_choice import (MultipleChoiceExample, example_from_json, featurize_multiple_choice,
                                    iter_multiple_choice_file, masked_choice_logits,
                                    read_multiple_choice_file)
from ..metrics.classification import accuracy
from .classify import softmax
from .task import Task, chunks_of, register


@register
class MultipleChoiceTask(Task):
    name = "multiple-choice"
    architecture = "BertForMultipleChoice"
    head_prefix = "classifier."
    has_labels = False  # the targets are choice indices, not named labels
    label_keys = ("labels",)
    metric = "accuracy"
    report_metrics = ("accuracy",)
    per_token = False
    defaults = {"max_length": 128}
    blank_prediction = {"label": None, "choice": None, "probabilities": None}
    serving_signatures = {"choices": "serving_default"}

    @classmethod
    def model_class(cls):
        from ..model.models import BertForMultipleChoice

        return BertForMultipleChoice

    @classmethod
    def num_outputs(cls, labels):
        return 1

    @classmethod
    def build_loss(cls):
        from ..training.losses import ClassificationLoss

        return ClassificationLoss()  # cross-entropy over the [B, C] choice logits

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.modules import MultipleChoiceModule

        return MultipleChoiceModule(model, tokenizer, max_length=self.options["max_length"])

    def read(self, path, labels=None, train=False):
        return read_multiple_choice_file(path, same_choice_count=train)

    def read_chunks(self, path, labels, size):
        """Lists of at most `size` questions, the file read as they are taken (bounded memory)."""
        return chunks_of(iter_multiple_choice_file(path), size)

    def labels_from(self, examples):
        return None

    def featurize(self, examples, tokenizer, labels):
        return featurize_multiple_choice(examples, tokenizer, max_length=self.options["max_length"])

    def evaluation_rows(self, examples, features, outputs, labels):
        """{"labels": the right choices, "predicted": the best-scored choices} (int [N])."""
        logits = masked_choice_logits(outputs["logits"], features["choice_mask"])
        return {"labels": np.asarray(features["labels"]), "predicted": logits.argmax(-1)}

    def score_rows(self, rows, labels):
        return {"accuracy": accuracy(rows["labels"], rows["predicted"])}

    def format_predictions(self, examples, features, outputs, labels):
        probabilities = choice_probabilities(outputs["logits"], features["choice_mask"])
        results = []
        for example, probs in zip(examples, probabilities):
            best = int(probs.argmax())
            results.append({"label": best, "choice": example.choices[best],
                            "probabilities": [round(float(p), 6) for p in probs[:len(example.choices)]]})
        return results

    @classmethod
    def format_served(cls, outputs, n, labels):
        """`outputs` also holds the items' `choice_counts` and `choice_texts` (the runtime pads every
        question to the most choices of the batch)."""
        counts = np.asarray(outputs["choice_counts"])
        probabilities = choice_probabilities(outputs["logits"], np.arange(outputs["logits"].shape[1]) < counts[:, None])
        best = probabilities.argmax(-1)  # padded choices have probability 0
        return [{"label": int(best[i]), "choice": outputs["choice_texts"][i][best[i]],
                 "probabilities": [round(float(p), 6) for p in probabilities[i, :counts[i]]]} for i in range(n)]

    def examples_from_items(self, kind, items):
        if kind != "choices":
            raise ValueError(f"multiple-choice takes (question, choices) items, not {kind}")
        return [MultipleChoiceExample(q, tuple(choices), None, f"<request>:{i + 1}")
                for i, (q, choices) in enumerate(items)]

    def examples_from_lines(self, lines, sources=None):
        sources = sources or [f"<input>:{i + 1}" for i in range(len(lines))]
        examples = []
        for line, where in zip(lines, sources):
            if line.lstrip().startswith("{"):
                try:
                    example = example_from_json(json.loads(line), where)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            else:
                context, *choices = line.split("\t")
                example = example_from_json({"question": context, "choices": choices}, where)
            if len(example.choices) < 2:
                raise ValueError(f"{where}: {len(example.choices)} choice(s); give a question and at least 2 "
                                 "choices, TAB-separated or as JSON")
            examples.append(example)
        return examples


def choice_probabilities(logits: np.ndarray, choice_mask: np.ndarray) -> np.ndarray:
    """Softmax over the real choices of [N, C] logits (padded ones get probability 0)."""
    return softmax(masked_choice_logits(logits, choice_mask))
