"""BertTextClassifier: strings in, class logits out, trained with Keras' own compile/fit.

The Keras-native face of the `classify` task, shaped like KerasHub's `TextClassifier`:

    clf = bertkit.BertTextClassifier.from_pretrained("google-bert/bert-base-uncased", num_labels=2)
    clf.compile()                                   # AdamW + BERT schedule, cross-entropy, accuracy
    clf.fit(x=train_texts, y=train_labels, batch_size=32, epochs=3, validation_data=(dev_texts, dev_y))
    clf.predict(["a fine film"])                    # float32 logits [N, num_labels]
    clf.save("clf.keras"); clf.save_pretrained("clf_dir")   # Keras file / HF-layout directory

Raw strings are tokenized in the tf.data pipeline by its `preprocessor` (`BertPreprocessor`), so
the compiled step sees int32 batches. The model it wraps is the same `BertForSequenceClassification`
that `bertkit finetune classify` trains, and `compile()`'s defaults are the engine's (AdamW with
decoupled weight decay, no decay on LayerNorm or biases, global-norm clipping at 1.0, linear warmup
over `warmup_ratio` of the steps then linear decay to 0): on the same batches both give the same
weights (tests/model/test_text_classifier.py).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .encoder import BertEncoder
from .keras_training import DEFAULTS as _DEFAULTS
from .keras_training import EngineTraining
from .models import BertForSequenceClassification
from .preprocessor import BertPreprocessor

SINGLE_LABEL = "single_label_classification"  # HF's problem_type when config.json names none


def problem_types() -> dict[str, str]:
    """HF's BertForSequenceClassification `problem_type` -> the registered task that trains and
    saves it (each task declares its `hf_problem_type`; the first registered wins)."""
    from ..tasks.task import all_tasks

    types: dict[str, str] = {}
    for name, task in all_tasks().items():
        if task.architecture == "BertForSequenceClassification":
            types.setdefault(task.hf_problem_type or SINGLE_LABEL, name)
    return types


def task_of(problem_type: str) -> str:
    """The bertkit task of an HF problem type; ValueError naming the valid ones."""
    types = problem_types()
    if problem_type not in types:
        raise ValueError(f"problem_type must be one of {', '.join(types)}, got {problem_type!r}")
    return types[problem_type]


@keras.saving.register_keras_serializable(package="bertkit")
class BertTextClassifier(EngineTraining, keras.Model):
    """A BERT text classifier that takes raw strings (or `(texts, text_pairs)` for pair tasks).

    Args:
      backbone: a `BertEncoder` (e.g. `bertkit.load_pretrained(path)`); ignored with `task_model`.
      num_classes: outputs of the new classification head.
      preprocessor: a `BertPreprocessor`; without one the model takes the encoder's int32 dict.
      dropout: dropout before the head (default: the backbone config's hidden_dropout_prob).
      labels: class names, index i naming logit i (saved as HF id2label).
      task_model: an existing `BertForSequenceClassification` to wrap (from_pretrained uses it).
      problem_type: as HF's: "single_label_classification" (softmax over the classes, the
        default), "multi_label_classification" (a sigmoid per class; y a multi-hot numpy array
        [N, C] or one list of label names / indices per text) or "regression" (num_classes 1; y real
        numbers, MSE).

    Call: strings [batch] / a pair of them / the encoder's dict -> float32 logits [batch, num_classes].
    """

    def __init__(self, backbone: BertEncoder | None = None, num_classes: int = 2,
                 preprocessor: BertPreprocessor | None = None, dropout: float | None = None,
                 labels: list[str] | None = None, task_model: BertForSequenceClassification | None = None,
                 problem_type: str = "single_label_classification", **kwargs):
        super().__init__(**kwargs)
        task = task_of(problem_type)
        self.problem_type = problem_type
        if task_model is None:
            if backbone is None:
                raise ValueError("BertTextClassifier needs a backbone (a BertEncoder) or a task_model")
            task_model = BertForSequenceClassification(
                backbone.config, num_labels=1 if problem_type == "regression" else num_classes, encoder=backbone,
                classifier_dropout=dropout)
            task_model.build()
        from ..tasks.task import get_task

        get_task(task).mark(task_model)  # saved as that task (HF problem_type)
        if labels is not None:
            if len(labels) != task_model.num_labels:
                raise ValueError(f"{len(labels)} labels for {task_model.num_labels} classes")
            task_model.labels = list(labels)
        self.task_model = task_model
        self.preprocessor = preprocessor
        # clf(["a text", ...]) works as clf(tf.constant([...])) does: strings are not converted.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    # --- construction and files ---------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str, num_labels: int | None = None, labels: list[str] | None = None,
                        max_length: int | None = None, revision: str | None = None, dropout: float | None = None,
                        attention_dropout: float | None = None, problem_type: str | None = None
                        ) -> "BertTextClassifier":
        """A classifier from a model directory or Hub name: a fine-tuned classifier (classify,
        multilabel or regression) keeps its head, labels and problem type; any other checkpoint gets a
        new head of `num_labels` (or len(labels)) outputs for `problem_type` (default single-label).

        `max_length` (word pieces per sequence) defaults to the saved classifier's, else 128, and is
        capped at the model's max_position_embeddings. `dropout` / `attention_dropout` replace the
        checkpoint's rates, as HF's `from_pretrained(..., hidden_dropout_prob=...)`."""
        from ..hub import resolve_model_path
        from ..pretrained import load_model, read_config, saved_task
        from ..tokenizer import load_tokenizer

        path = resolve_model_path(name_or_path, revision)
        config, raw = read_config(path)
        saved_length = (raw.get("bertkit_task_options") or {}).get("max_length")
        length = config.fit_length(max_length, saved_length or 128, "max_length", path)
        saved = {task: problem for problem, task in problem_types().items()}.get(saved_task(raw))
        problem_type = problem_type or saved or SINGLE_LABEL
        model = load_model(path, task=task_of(problem_type), labels=labels,
                           num_labels=1 if problem_type == "regression" else num_labels,
                           config_overrides={"hidden_dropout_prob": dropout,
                                             "attention_probs_dropout_prob": attention_dropout})
        return cls(task_model=model, preprocessor=BertPreprocessor(load_tokenizer(path), max_length=length),
                   problem_type=problem_type)

    def save_pretrained(self, out_dir: str) -> str:
        """Writes a HF-layout directory (`transformers.BertForSequenceClassification` and
        `bertkit predict` / `evaluate` / `export` load it)."""
        from ..pretrained import save_model

        options = {"max_length": self.preprocessor.max_length} if self.preprocessor else {}
        return save_model(self.task_model, out_dir, tokenizer=self.preprocessor.tokenizer if self.preprocessor else None,
                          extra_config={"bertkit_task_options": options})

    @property
    def labels(self) -> list[str] | None:
        return getattr(self.task_model, "labels", None)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "problem_type": self.problem_type,
                "task_model": keras.saving.serialize_keras_object(self.task_model),
                "preprocessor": keras.saving.serialize_keras_object(self.preprocessor) if self.preprocessor else None}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        task_model = keras.saving.deserialize_keras_object(config.pop("task_model"))
        preprocessor = config.pop("preprocessor")
        preprocessor = keras.saving.deserialize_keras_object(preprocessor) if preprocessor else None
        return cls(task_model=task_model, preprocessor=preprocessor, **config)

    # --- the forward pass ---------------------------------------------------------------------

    def call(self, inputs, training=False):
        if not isinstance(inputs, dict):
            inputs = self._preprocess(inputs)
        return self.task_model(inputs, training=training)["logits"]

    def _preprocess(self, texts):
        if self.preprocessor is None:
            raise ValueError("this BertTextClassifier has no preprocessor: give it the encoder's int32 dict "
                             "(input_ids, token_type_ids, attention_mask), or build it with one")
        return self.preprocessor(texts)

    # --- Keras training API with raw strings ---------------------------------------------------

    def _default_loss(self):
        """Cross-entropy on the logits (softmax for single-label, a sigmoid per class for
        multi-label) or mean squared error (regression), as HF's problem types."""
        return {"single_label_classification": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "multi_label_classification": keras.losses.BinaryCrossentropy(from_logits=True),
                "regression": keras.losses.MeanSquaredError()}[self.problem_type]

    def _default_metrics(self):
        """Accuracy, per-label accuracy at probability 0.5, or Pearson correlation."""
        return {"single_label_classification": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                # a label is predicted when its probability reaches 0.5, i.e. its logit 0
                "multi_label_classification": [keras.metrics.BinaryAccuracy(name="label_accuracy", threshold=0.0)],
                "regression": [keras.metrics.PearsonCorrelation(name="pearson")]}[self.problem_type]

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, validation_data=None,
            shuffle: bool = True, **kwargs):
        """keras.Model.fit on raw strings: `x` a list / array of texts, a `(texts, text_pairs)` pair,
        or a tf.data.Dataset of batched `(texts, labels)`; `y` class indices or label names (of
        `labels`; a Dataset's labels must be indices). `validation_data`: `(x, y)` in the same forms.
        Batches default to 32 texts. Without a `compile()` call first, compile()'s defaults are used."""
        batch_size = batch_size or _DEFAULTS["batch_size"]
        data = self._dataset(x, y, batch_size, shuffle)
        if validation_data is not None:
            validation_data = self._dataset(*_unpack(validation_data), batch_size, False)
        self._schedule_fit(data, epochs, kwargs.get("steps_per_epoch"))
        return super().fit(data, epochs=epochs, validation_data=validation_data, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, batch_size: int | None = None, **kwargs):
        """keras.Model.evaluate on raw strings (the forms `fit` takes)."""
        self._ensure_compiled()
        return super().evaluate(self._dataset(x, y, batch_size or _DEFAULTS["batch_size"], False), **kwargs)

    def predict(self, x, batch_size: int | None = None, **kwargs):
        """Logits float32 [N, num_classes] for raw strings (a list, an array or a `(texts, pairs)`)."""
        return super().predict(self._dataset(x, None, batch_size or _DEFAULTS["batch_size"], False), **kwargs)

    def _dataset(self, x, y, batch_size: int, shuffle: bool) -> tf.data.Dataset:
        if isinstance(x, tf.data.Dataset):
            data = x
        else:
            texts = tuple(_strings(part) for part in x) if isinstance(x, tuple) else _strings(x)
            n = len(texts[0]) if isinstance(texts, tuple) else len(texts)
            elements = texts if y is None else (texts, self._label_ids(y, n))
            data = tf.data.Dataset.from_tensor_slices(elements)
            if shuffle:
                data = data.shuffle(n, reshuffle_each_iteration=True)
            data = data.batch(batch_size)
        spec = data.element_spec
        if self.preprocessor is None:
            pass
        elif _is_text_spec(spec):  # (texts, text_pairs) without labels
            data = data.map(lambda a, b: self.preprocessor((a, b)), num_parallel_calls=tf.data.AUTOTUNE)
        elif isinstance(spec, tuple):  # (inputs, labels[, sample weights])
            if not isinstance(spec[0], dict):  # a dict is already the model's inputs
                data = data.map(lambda x, *rest: (self.preprocessor(x), *rest), num_parallel_calls=tf.data.AUTOTUNE)
        elif not isinstance(spec, dict):
            data = data.map(self.preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        return data.prefetch(tf.data.AUTOTUNE)

    def _label_ids(self, y, n: int) -> np.ndarray:
        if len(y) != n:
            raise ValueError(f"{n} texts but {len(y)} labels")
        if self.problem_type == "regression":
            return np.asarray(y, np.float32).reshape(n, 1)
        if self.problem_type == "multi_label_classification":
            return self._multi_hot(y)
        y = np.asarray(y)
        if y.dtype.kind in "USO":
            names = {name: i for i, name in enumerate(self.labels or [])}
            unknown = sorted({str(v) for v in y} - set(names))
            if unknown:
                raise ValueError(f"labels {unknown[:5]} are not among the model's labels {self.labels}")
            return np.array([names[str(v)] for v in y], np.int32)
        return self._check_indices(y.astype(np.int64)).astype(np.int32)

    def _check_indices(self, ids: np.ndarray) -> np.ndarray:
        if ids.size and (ids.min() < 0 or ids.max() >= self.task_model.num_labels):
            raise ValueError(f"class indices must be in [0, {self.task_model.num_labels}), got "
                             f"{int(ids.min())}..{int(ids.max())}")
        return ids

    def _multi_hot(self, y) -> np.ndarray:
        """y as multi-hot float32 [N, C]: given so as a numpy array, or as one list of label names /
        indices per text. (A Python list of 0/1 rows would be ambiguous with index lists, so
        multi-hot rows must come as an array.)"""
        c = self.task_model.num_labels
        if isinstance(y, np.ndarray) or isinstance(next(iter(y), None), np.ndarray):
            hot = np.asarray(y, np.float32)
            if hot.shape[1:] != (c,):
                raise ValueError(f"multi-hot labels must be [texts, {c}], got {list(hot.shape)}")
            return hot
        names = {name: i for i, name in enumerate(self.labels or [])}
        hot = np.zeros((len(y), c), np.float32)
        for row, labels in enumerate(y):
            for label in labels:
                if isinstance(label, str):
                    if label not in names:
                        raise ValueError(f"labels [{label!r}] are not among the model's labels {self.labels}")
                    hot[row, names[label]] = 1.0
                elif not isinstance(label, (int, np.integer)):
                    raise ValueError(f"text {row}: a label list holds names or class indices, got {label!r}; "
                                     "give multi-hot labels as a numpy array [texts, classes]")
                else:
                    hot[row, int(self._check_indices(np.asarray([label]))[0])] = 1.0
        return hot


def _strings(texts) -> np.ndarray:
    if isinstance(texts, str):
        raise ValueError("give a list of texts, not one string")
    return np.asarray(list(texts), dtype=object).astype(str)


def _is_text_spec(spec) -> bool:
    """A (texts, text_pairs) element: two string tensors."""
    return (isinstance(spec, tuple) and len(spec) == 2
            and all(isinstance(s, tf.TensorSpec) and s.dtype == tf.string for s in spec))


def _unpack(data):
    if isinstance(data, tf.data.Dataset):
        return data, None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("validation_data must be (texts, labels) or a tf.data.Dataset")
    return data[0], data[1]

