"""Keras models for token classification, question answering and multiple choice, on raw text.

The Keras-native faces of the `ner`, `qa` and `multiple-choice` tasks, shaped like
`BertTextClassifier` (and KerasHub's task models): `from_pretrained`, `compile()` with the fine-tuning
engine's defaults, `fit` on Python data, `.keras` and HF-layout saving.

    tagger = bertkit.BertTokenClassifier.from_pretrained(path, labels=["O", "B-PER", "I-PER"])
    tagger.compile()
    tagger.fit(x=[["John", "lives", "here"]], y=[["B-PER", "O", "O"]], epochs=3)
    tagger.predict_tags([["Mary", "smiled"]])            # [["B-PER", "O"]]
    tagger.predict_entities(["Mary smiled"])             # [[{"type": "PER", "start": 0, "end": 4, ...}]]

    qa = bertkit.BertQuestionAnswerer.from_pretrained(path)
    qa.fit(x=(questions, contexts), y=[{"text": "Denver Broncos", "answer_start": 177}, ...])
    qa.predict_answers(questions, contexts)              # [{"answer", "start", "end", "score"}, ...]

    mc = bertkit.BertMultipleChoice.from_pretrained(path)
    mc.fit(x=(questions, [[choice, ...], ...]), y=[2, ...])
    mc.predict_choices(questions, choices)               # [{"label", "choice", "probabilities"}, ...]

Unlike sentence classification, these tasks need more than a tokenizer between text and model: word
tags are aligned to first word pieces, long sentences and contexts are cut into overlapping windows,
answers are located as piece spans. That work is the task's own featurizer (bertkit.tasks), the one
`bertkit finetune` runs, done in Python before the data reaches tf.data; `fit` then trains on batches
made exactly as the engine makes them (rows of similar length together, each batch cut to its longest
row, the same shuffle for the same seed), so both give the same weights (tests/model/test_keras_tasks.py).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..data.common import make_dataset
from ..data.multiple_choice import MultipleChoiceExample
from ..data.ner import NerExample
from ..data.squad import SquadExample, parse_question
from ..tasks.task import get_task
from .keras_training import DEFAULTS, EngineTraining
from .preprocessor import BertPreprocessor


class _FeaturizedTaskModel(EngineTraining, keras.Model):
    """A task model whose inputs are featurized in Python by its task (bertkit.tasks.TASKS).

    Call: the encoder's int32 dict -> the Keras-shaped outputs the default loss takes (see subclasses).
    """

    task_name: str

    def __init__(self, task_model: keras.Model, preprocessor: BertPreprocessor, task_options: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.task_model = task_model
        # The preprocessor holds the tokenizer; a `.keras` file keeps the vocabulary through it.
        self.preprocessor = preprocessor
        self.task = get_task(self.task_name)(**{**(task_options or {}), "max_length": preprocessor.max_length})
        self.built = True

    # --- construction and files ---------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str, labels: list[str] | None = None, max_length: int | None = None,
                        revision: str | None = None, dropout: float | None = None,
                        attention_dropout: float | None = None, **task_options):
        """The model from a directory or Hub name: a checkpoint fine-tuned for this task keeps its
        head, labels and task options; any other gets a new head (`labels` names its outputs where
        the task has labels). `max_length` (word pieces per row) defaults to the saved model's, else
        the task's (128; QA 384), capped at the model's positions. `dropout` / `attention_dropout`
        replace the checkpoint's rates. `task_options` are the task's own (QA: doc_stride,
        max_query_length, max_answer_length, n_best_size, version_2; NER: stride)."""
        from ..hub import resolve_model_path
        from ..pretrained import load_model, read_config, saved_task
        from ..tokenizer import load_tokenizer

        path = resolve_model_path(name_or_path, revision)
        config, raw = read_config(path)
        saved = (raw.get("bertkit_task_options") or {}) if saved_task(raw) == cls.task_name else {}
        given = {k: v for k, v in {**task_options, "max_length": max_length}.items() if v is not None}
        task = get_task(cls.task_name)(**{**saved, **given})
        task.fit_lengths(config, path)
        model = load_model(path, task=cls.task_name, labels=labels, num_labels=task.num_outputs(labels),
                           config_overrides={"hidden_dropout_prob": dropout,
                                             "attention_probs_dropout_prob": attention_dropout})
        if task.has_labels and not model.labels:
            raise ValueError(f"{path} has no {cls.task_name} head: give labels=[...] to build one")
        options = {k: v for k, v in task.options.items() if k not in task.transient}
        return cls(task_model=model, preprocessor=BertPreprocessor(load_tokenizer(path), options.pop("max_length")),
                   task_options=options)

    def save_pretrained(self, out_dir: str) -> str:
        """Writes a HF-layout directory (`transformers.BertFor...` of the task, and `bertkit
        predict` / `evaluate` / `export` / `serve` load it), with the task options."""
        from ..pretrained import save_model
        from ..tasks.base import saved_options

        return save_model(self.task_model, out_dir, tokenizer=self.tokenizer, labels=self.labels,
                          extra_config={"bertkit_task_options": saved_options(self.task)})

    @property
    def tokenizer(self):
        return self.preprocessor.tokenizer

    @property
    def labels(self) -> list[str] | None:
        return getattr(self.task_model, "labels", None)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "task_options": self.task.options,
                "task_model": keras.saving.serialize_keras_object(self.task_model),
                "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        task_model = keras.saving.deserialize_keras_object(config.pop("task_model"))
        preprocessor = keras.saving.deserialize_keras_object(config.pop("preprocessor"))
        return cls(task_model=task_model, preprocessor=preprocessor, **config)

    # --- the forward pass ---------------------------------------------------------------------

    def call(self, inputs, training=False):
        return self._keras_outputs(self.task_model(inputs, training=training))

    def _keras_outputs(self, outputs: dict):
        return outputs["logits"]

    def _keras_targets(self, targets):
        return targets

    # --- data ---------------------------------------------------------------------------------

    def _examples(self, x, y) -> list:
        """The task's examples of `x` (and targets `y`, or None)."""
        raise NotImplementedError

    def _features(self, x, y=None) -> tuple[list, dict]:
        examples = self._examples(x, y)
        if not examples:
            raise ValueError("no examples: x is empty")
        return examples, self.task.featurize(examples, self.tokenizer, self.labels)

    def _dataset(self, x, y, batch_size: int | None, shuffle: bool = False, seed: int | None = None,
                 targets: bool = True) -> tf.data.Dataset:
        """Batches made as the engine makes them (bertkit.data.common.make_dataset): with
        `shuffle`, rows of similar length together in a seeded order that changes every epoch;
        each batch cut to its longest row. A tf.data.Dataset `x` is used as it is."""
        if isinstance(x, tf.data.Dataset):
            return x
        batch_size = batch_size or DEFAULTS["batch_size"]
        features = self._features(x, y if targets else None)[1]
        keys = self.task.label_keys if targets else None
        data = make_dataset(features, batch_size, label_keys=keys, shuffle=shuffle,
                            seed=DEFAULTS["seed"] if seed is None else seed, bucket=True, pad_multiple=1,
                            sequence_labels=self.task.per_token, group_by_length=self.task.group_by_length)
        data = data.apply(tf.data.experimental.assert_cardinality(math.ceil(len(features["input_ids"]) / batch_size)))
        if targets:
            data = data.map(lambda inputs, t: (inputs, self._keras_targets(t)))
        return data

    # --- Keras training API on Python data ----------------------------------------------------

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, validation_data=None,
            shuffle: bool = True, seed: int | None = None, **kwargs):
        """keras.Model.fit on the task's Python data (see the subclass for `x` and `y`), or on a
        tf.data.Dataset of (encoder inputs, Keras targets). Batches of `batch_size` (32) rows
        (feature rows: a long text's windows are rows of their own), shuffled with `seed`
        (FinetuneOptions' default) as `bertkit finetune --seed` shuffles them.
        `validation_data`: (x, y) in the same forms. Without a `compile()` call first, compile()'s
        defaults are used."""
        data = self._dataset(x, y, batch_size, shuffle, seed)
        if validation_data is not None and not isinstance(validation_data, tf.data.Dataset):
            validation_data = self._dataset(*validation_data, batch_size)
        self._schedule_fit(data, epochs, kwargs.get("steps_per_epoch"))
        return super().fit(data, epochs=epochs, validation_data=validation_data, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, batch_size: int | None = None, **kwargs):
        """keras.Model.evaluate (the loss and compiled metrics) on the forms `fit` takes. The task's
        own metrics (seqeval entity F1, SQuAD EM/F1, accuracy) come from `score`."""
        self._ensure_compiled()
        return super().evaluate(self._dataset(x, y, batch_size), **kwargs)

    def predict(self, x, batch_size: int | None = None, **kwargs):
        """The Keras outputs (as `call` gives them) for every feature row of `x`, numpy, in
        feature order; per-token outputs are padded to max_length with -1e4."""
        features = x if isinstance(x, dict) else self._features(x)[1]
        return np.asarray(self._keras_outputs(self._forward(features, batch_size)))

    def score(self, x, y, batch_size: int | None = None) -> dict:
        """The task's metrics on labelled data, as `bertkit evaluate` reports them."""
        examples, features, outputs = self._run(x, y, batch_size)
        return self.task.score(examples, features, outputs, self.labels)

    def calibrate(self, x, y, batch_size: int | None = None) -> dict:
        """Tunes what the task tunes on dev data after training (SQuAD 2.0: the null score diff
        threshold with the best F1, as `bertkit finetune` does with a dev file), keeps it in the task
        options (saved by save_pretrained) and returns it ({} for a task that tunes nothing)."""
        examples, features, outputs = self._run(x, y, batch_size)
        tuned = self.task.calibrate(examples, features, outputs, self.labels)
        self.task.options.update(tuned)
        return tuned

    def _run(self, x, y=None, batch_size: int | None = None):
        examples, features = self._features(x, y)
        return examples, features, self._forward(features, batch_size)

    def _forward(self, features: dict, batch_size: int | None) -> dict:
        """The task model's outputs (numpy, feature order) over featurized rows (run_model)."""
        from ..tasks.inference import run_model

        return run_model(self.task_model, features, self.task.per_token, batch_size=batch_size or DEFAULTS["batch_size"])


def _texts(values, what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{what}: give a list of texts, not {'one string' if isinstance(values, str) else repr(values)}")
    values = list(values)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ValueError(f"{what}[{i}]: expected a string, got {type(v).__name__}")
    return values


def _same_length(what: str, a: Sequence, b: Sequence, b_name: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} {what} but {len(b)} {b_name}")


@keras.saving.register_keras_serializable(package="bertkit")
class BertTokenClassifier(_FeaturizedTaskModel):
    """Word-level tagging (NER): a tag per word from its first word piece (HF's
    BertForTokenClassification, saved so that transformers loads it).

    x: a list of sentences, each a list of words. y: one list of tags per sentence (names from
    `labels`, e.g. IOB tags "B-PER"). Sentences longer than `max_length` - 2 pieces are read in
    overlapping windows, each word tagged from the window where it has the most context.
    Call / `predict`: float32 logits [rows, seq, num_tags]. Default loss: cross-entropy over the
    tagged pieces (bertkit.losses.TokenClassificationLoss); metric: accuracy over tagged pieces.
    Raises ValueError naming the sentence (`x[i]`) for words and tags that do not line up, or a tag
    not among `labels`.

    Example:
      >>> tagger = BertTokenClassifier.from_pretrained(path, labels=["O", "B-PER", "I-PER"])  # doctest: +SKIP
      >>> tagger.compile(); tagger.fit([["Ada", "wrote"]], [["B-PER", "O"]], epochs=2)  # doctest: +SKIP
      >>> tagger.predict_tags([["Ada", "smiled"]])  # doctest: +SKIP
      [['B-PER', 'O']]
    """

    task_name = "ner"

    def _default_loss(self):
        from ..losses import TokenClassificationLoss

        return TokenClassificationLoss()

    def _default_metrics(self):
        return [TaggedPieceAccuracy()]

    def _examples(self, x, y):
        if isinstance(x, str) or any(isinstance(words, str) for words in x):
            raise ValueError("x holds sentences as lists of words (predict_entities takes raw texts)")
        sentences = [_texts(words, f"x[{i}]") for i, words in enumerate(x)]
        if y is None:
            return [NerExample(words=w or ["."], source=f"x[{i}]") for i, w in enumerate(sentences)]
        tags = [list(t) for t in y]
        _same_length("sentences", sentences, tags, "tag lists")
        for i, (w, t) in enumerate(zip(sentences, tags)):
            _same_length(f"words in x[{i}]", w, t, f"tags in y[{i}]")
        return [NerExample(words=w, tags=t, source=f"x[{i}]") for i, (w, t) in enumerate(zip(sentences, tags))]

    def predict_tags(self, x, batch_size: int | None = None) -> list[list[str]]:
        """One tag per word of each sentence (x: a list of word lists)."""
        examples, features, outputs = self._run(x, None, batch_size)
        tags = self.task.predicted_tags(examples, features, outputs, self.labels)
        return [t[:len(words)] for t, words in zip(tags, x)]

    def predict_entities(self, texts, batch_size: int | None = None) -> list[list[dict]]:
        """Entities of raw texts, as `bertkit predict` gives them: per text a list of
        {"type", "start", "end", "text"} (character offsets, end exclusive). Words are runs of
        letters and digits, and each punctuation mark on its own (bertkit.data.ner.split_words)."""
        texts = _texts(texts, "texts")
        examples = self.task.examples_from_lines(texts)
        features = self.task.featurize(examples, self.tokenizer, self.labels)
        outputs = self._forward(features, batch_size)
        return [p["entities"] for p in self.task.format_predictions(examples, features, outputs, self.labels)]


@keras.saving.register_keras_serializable(package="bertkit")
class TaggedPieceAccuracy(keras.metrics.Mean):
    """Share of tagged word pieces (label != -100) whose argmax is their tag, over all batches."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.cast(y_true, tf.int32)
        tagged = tf.cast(labels != -100, tf.float32)
        correct = tf.cast(tf.argmax(y_pred, axis=-1, output_type=tf.int32) == labels, tf.float32)
        return super().update_state(correct, sample_weight=tagged)


@keras.saving.register_keras_serializable(package="bertkit")
class BertQuestionAnswerer(_FeaturizedTaskModel):
    """Extractive question answering (SQuAD v1.1 / v2.0; HF's BertForQuestionAnswering).

    x: `(questions, contexts)`, two lists of strings. y: one answer per question, as SQuAD gives
    it: {"text": str, "answer_start": int (character offset in the context)}, a list of such
    answers (the first is trained on, all count in `score`), or None / [] for an unanswerable
    question (SQuAD 2.0: the model then learns to point at [CLS], and `version_2` turns on).
    Contexts longer than a window are read in windows `doc_stride` pieces apart.
    Call / `predict`: float32 [rows, seq, 2], start and end logits. Default loss: (CE(start) +
    CE(end)) / 2 (bertkit.losses.SpanLoss); no per-batch metric (`score` gives EM and F1).
    Raises ValueError naming the question (`y[i]`) when an answer's text is not at its
    answer_start in the context.

    Example:
      >>> qa = BertQuestionAnswerer.from_pretrained(path)  # doctest: +SKIP
      >>> context = "The Eiffel Tower was completed in 1889."
      >>> qa.compile(); qa.fit((["When?"], [context]), [{"text": "1889", "answer_start": 34}])  # doctest: +SKIP
      >>> qa.predict_answers(["When was it completed?"], [context])  # doctest: +SKIP
      [{'answer': '1889', 'start': 34, 'end': 38, 'score': 9.1}]
    """

    task_name = "qa"

    def _keras_outputs(self, outputs):
        return tf.stack([outputs["start_logits"], outputs["end_logits"]], axis=-1)

    def _keras_targets(self, targets):
        return tf.stack([targets["start_positions"], targets["end_positions"]], axis=-1)

    def _default_loss(self):
        from ..losses import SpanLoss

        return SpanLoss()

    def _examples(self, x, y):
        if not isinstance(x, tuple) or len(x) != 2:
            raise ValueError("x must be (questions, contexts)")
        questions, contexts = _texts(x[0], "questions"), _texts(x[1], "contexts")
        _same_length("questions", questions, contexts, "contexts")
        if y is None:
            return [SquadExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
        _same_length("questions", questions, y, "answers")
        examples = []
        for i, (q, c, answers) in enumerate(zip(questions, contexts, y)):
            answers = [answers] if isinstance(answers, dict) else list(answers or [])
            entry = {"id": str(i), "question": q, "answers": answers, "is_impossible": not answers}
            try:
                example, bad = parse_question(entry, c, "")
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"y[{i}]: an answer is {{'text': str, 'answer_start': int}} ({e!r})") from None
            if bad:
                raise ValueError(f"y[{i}]: {bad[0].partition(': ')[2]}")
            examples.append(example)
        if any(e.is_impossible for e in examples):
            self.task.options["version_2"] = True
        return examples

    def predict_answers(self, questions, contexts, batch_size: int | None = None) -> list[dict]:
        """Per question {"answer": str, "start", "end": character offsets in its context (end
        exclusive), "score": start + end logit}; SQuAD 2.0 models answer "" (start -1) when the
        null score beats the best span by more than the saved threshold."""
        examples, features, outputs = self._run((questions, contexts), None, batch_size)
        return self.task.format_predictions(examples, features, outputs, None)


@keras.saving.register_keras_serializable(package="bertkit")
class BertMultipleChoice(_FeaturizedTaskModel):
    """Multiple choice (SWAG, CommonsenseQA; HF's BertForMultipleChoice): each
    `[CLS] question [SEP] choice [SEP]` is scored by the shared encoder and a 1-unit head, and a
    softmax runs over a question's choices.

    x: `(questions, choices)`: a list of strings and, per question, a list of candidate answers
    (questions may have different numbers). y: the index of the right choice per question.
    Call / `predict`: float32 logits [questions, choices]. Default loss: cross-entropy over the
    choices; metric: accuracy. Raises ValueError naming the question for fewer than 2 choices or an
    answer index outside them.

    Example:
      >>> mc = BertMultipleChoice.from_pretrained(path)  # doctest: +SKIP
      >>> mc.compile(); mc.fit((["A cat is a"], [["animal", "city"]]), [0], epochs=3)  # doctest: +SKIP
      >>> mc.predict_choices(["A dog is a"], [["city", "animal"]])  # doctest: +SKIP
      [{'label': 1, 'choice': 'animal', 'probabilities': [0.2, 0.8]}]
    """

    task_name = "multiple-choice"

    def _default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def _default_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def _examples(self, x, y):
        if not isinstance(x, tuple) or len(x) != 2:
            raise ValueError("x must be (questions, choices)")
        questions = _texts(x[0], "questions")
        choices = [tuple(_texts(c, f"choices[{i}]")) for i, c in enumerate(x[1])]
        _same_length("questions", questions, choices, "choice lists")
        for i, c in enumerate(choices):
            if len(c) < 2:
                raise ValueError(f"choices[{i}]: {len(c)} choice(s); a question needs at least 2")
        answers = [None] * len(questions) if y is None else [int(a) for a in y]
        _same_length("questions", questions, answers, "answers")
        for i, (a, c) in enumerate(zip(answers, choices)):
            if a is not None and not 0 <= a < len(c):
                raise ValueError(f"y[{i}]: answer {a} is not a choice index of [0, {len(c)})")
        return [MultipleChoiceExample(q, c, a, f"x[{i}]") for i, (q, c, a) in enumerate(zip(questions, choices, answers))]

    def predict_choices(self, questions, choices, batch_size: int | None = None) -> list[dict]:
        """Per question {"label": index of the chosen answer, "choice": its text, "probabilities":
        one per choice}."""
        examples, features, outputs = self._run((questions, choices), None, batch_size)
        return self.task.format_predictions(examples, features, outputs, None)


__all__ = ["BertTokenClassifier", "BertQuestionAnswerer", "BertMultipleChoice", "TaggedPieceAccuracy"]
