"""The tf.Modules that become SavedModels: a task model or encoder with its tokenizer in the graph.

Each module holds (a) every model variable, explicitly, (b) the in-graph tokenizer, and (c) one
tf.function per signature, all with dynamic batch and sequence shapes. `signatures()` gives what
`tf.saved_model.save(module, dir, signatures=...)` needs; the same functions also run in-process
(the server uses them when given a model directory instead of an export).

Why an explicit variable list instead of tracking the Keras model: the SavedModel then holds the
model's weights as plain tf.Variables (`v.value` of every Keras variable) and nothing of Keras'
object graph (layers, optimizer slots, dropout seed states), so it loads with TensorFlow alone and
its variable count is checkable; the forward pass is a plain callable for the same reason.
`saving.save_module` verifies the result (same variable count and outputs after reloading).
"""

from __future__ import annotations

import functools

import tensorflow as tf

TEXT = tf.TensorSpec([None], tf.string, name="text")
TEXT_PAIR = tf.TensorSpec([None], tf.string, name="text_pair")
IDS = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("input_ids", "token_type_ids", "attention_mask")]


def _call_model(model, input_ids, token_type_ids, attention_mask):
    return model({"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask},
                 training=False)


class ServingModule(tf.Module):
    """Base: model variables + forward pass + in-graph tokenizer (padding to the longest row).

    Subclasses set `kind` ("classify", "ner", "qa", "encoder") and define their signatures.
    """

    kind = ""

    def __init__(self, model, tokenizer, max_length: int, options: dict | None = None):
        super().__init__(name=f"bertkit_{self.kind.replace('-', '_')}")
        model.config.check_length(max_length, "max_length")
        self.model_variables = [v.value for v in model.variables]
        # A plain callable, not an attribute tf.Module would track (see the module docstring).
        self._forward = functools.partial(_call_model, model)
        self.tokenizer = tokenizer.in_graph(max_length=max_length, padding="longest",
                                            truncation="longest_first")
        self.max_length = max_length
        self.pad_id, self.cls_id, self.sep_id = tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id
        self.unk_id = tokenizer.unk_id
        self.options = {"max_length": max_length, **(options or {})}
        self.labels_list: list[str] | None = None

    def forward(self, features: dict) -> dict:
        return self._forward(features["input_ids"], features["token_type_ids"], features["attention_mask"])

    def signatures(self) -> dict:
        """{signature name: tf.function with an input signature}; callable with keyword inputs.

        Functions, not concrete functions: tf.saved_model.save traces them in its own context
        anyway, so tracing them before saving would only double the export time.
        """
        raise NotImplementedError

    def sample_inputs(self, texts) -> dict:
        """{signature name: inputs} built from a few sample strings [B], for verifying an export."""
        encoded = self.tokenizer(texts)
        text_inputs = {"text_pair": texts[::-1], "text": texts} if getattr(self, "pair", False) else {"text": texts}
        return {"serving_default": text_inputs,
                "token_ids": {k: encoded[k] for k in ("input_ids", "token_type_ids", "attention_mask")}}

    def metadata(self) -> dict:
        """What a server (or a person) needs to know about the export; saved as JSON beside it
        (`saving.save_module` adds each signature's inputs and outputs)."""
        # dict()/list(): tf.Module wraps container attributes in tracking wrappers.
        labels = None if self.labels_list is None else list(self.labels_list)
        from ..tasks.task import task_names

        return {"kind": self.kind, "task": self.kind if self.kind in task_names() else None,
                "labels": labels, "options": dict(self.options)}


class ClassifyModule(ServingModule):
    """Sequence classification: strings (or string pairs) -> probabilities [B, labels], label [B].

    Signatures: `text` (text), `text_pair` (text, text_pair), `token_ids`; `serving_default` is
    `text_pair` for a pair classifier, else `text`. Truncation: longest_first to max_length, as
    `bertkit.data.classification.featurize_classification`; with `doc_stride`, a long text (of a
    pair: the second text) is read in windows and their logits pooled (`window_pool`), as the model
    was fine-tuned (`bertkit.data.classification.featurize_windows`).
    """

    kind = "classify"

    def __init__(self, model, tokenizer, labels: list[str], max_length: int = 128, pair: bool = False,
                 doc_stride: int | None = None, window_pool: str = "mean"):
        options = {"pair": pair, **({"doc_stride": doc_stride, "window_pool": window_pool} if doc_stride else {})}
        super().__init__(model, tokenizer, max_length, options)
        if window_pool not in ("mean", "max"):
            raise ValueError(f"window_pool must be 'mean' or 'max', got {window_pool!r}")
        self.labels_list = list(labels)
        self.pair = pair
        self.doc_stride, self.window_pool = doc_stride, window_pool
        self.label_names = tf.constant(self.labels_list)

    def _logits(self, text, text_pair=None):
        """[B, outputs]: of each input cut at max_length, or pooled over its document windows
        (the rows of `bertkit.data.classification.featurize_windows`)."""
        if not self.doc_stride:
            return self.forward(self.tokenizer(text) if text_pair is None else self.tokenizer(text, text_pair))["logits"]
        from ..data.classification import pair_first_length
        from .text import doc_windows, window_slices

        pieces = self.tokenizer.tokenize(text)["ids"]  # ragged [B, (T)]
        if text_pair is None:
            windows = doc_windows(pieces.row_lengths(), self.max_length - 2, self.doc_stride)
            inputs = self.tokenizer.pack_pieces(window_slices(pieces, windows))
        else:
            first = pieces[:, :pair_first_length(self.max_length)]
            second = self.tokenizer.tokenize(text_pair)["ids"]
            room = self.max_length - 3 - tf.cast(first.row_lengths(), tf.int32)
            windows = doc_windows(second.row_lengths(), room, self.doc_stride)
            inputs = self.tokenizer.pack_pieces(tf.gather(first, windows["example"]), window_slices(second, windows))
        logits = self.forward(inputs)["logits"]  # [R, outputs]
        pool = tf.math.unsorted_segment_mean if self.window_pool == "mean" else tf.math.unsorted_segment_max
        return pool(logits, windows["example"], tf.shape(text)[0])

    def _outputs(self, logits) -> dict:
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"logits": logits, "probabilities": probabilities, "label_id": label_id,
                "label": tf.gather(self.label_names, label_id)}

    @tf.function(input_signature=[TEXT], autograph=False)
    def predict_text(self, text):
        return self._outputs(self._logits(text))

    @tf.function(input_signature=[TEXT, TEXT_PAIR], autograph=False)
    def predict_pair(self, text, text_pair):
        return self._outputs(self._logits(text, text_pair))

    @tf.function(input_signature=IDS, autograph=False)
    def predict_ids(self, input_ids, token_type_ids, attention_mask):
        return self._outputs(self._forward(input_ids, token_type_ids, attention_mask)["logits"])

    def signatures(self) -> dict:
        return {"serving_default": self.predict_pair if self.pair else self.predict_text,
                "text": self.predict_text, "text_pair": self.predict_pair, "token_ids": self.predict_ids}


class RegressionModule(ClassifyModule):
    """Sequence regression: strings (or string pairs) -> score [B] float32 (and logits [B, 1]).
    Signatures as ClassifyModule's."""

    kind = "regression"

    def __init__(self, model, tokenizer, max_length: int = 128, pair: bool = False, **windows):
        super().__init__(model, tokenizer, [], max_length=max_length, pair=pair, **windows)
        self.labels_list = None

    def _outputs(self, logits) -> dict:
        return {"logits": logits, "score": logits[:, 0]}


class MultiLabelModule(ClassifyModule):
    """Multi-label classification: strings (or pairs) -> probabilities [B, labels] (sigmoid) and
    predicted [B, labels] bool (probability >= the label's threshold, tuned on dev by finetune).
    Signatures as ClassifyModule's."""

    kind = "multilabel"

    def __init__(self, model, tokenizer, labels: list[str], thresholds: list[float], max_length: int = 128,
                 pair: bool = False, **windows):
        super().__init__(model, tokenizer, labels, max_length=max_length, pair=pair, **windows)
        if len(thresholds) != len(labels):
            raise ValueError(f"{len(thresholds)} thresholds for {len(labels)} labels")
        self.thresholds = tf.constant([float(t) for t in thresholds], tf.float32)

    def _outputs(self, logits) -> dict:
        probabilities = tf.math.sigmoid(logits)
        return {"logits": logits, "probabilities": probabilities, "predicted": probabilities >= self.thresholds}

    def metadata(self) -> dict:
        meta = super().metadata()
        meta["options"]["thresholds"] = [round(float(t), 4) for t in self.thresholds.numpy()]
        return meta


class MultipleChoiceModule(ServingModule):
    """Multiple choice: question [B] and choices [B, C] strings -> probabilities [B, C] (softmax over
    the choices), label_id [B] (the chosen index), logits [B, C]. Each (question, choice) pair is
    tokenized as `[CLS] question [SEP] choice [SEP]`, longest_first to max_length, as
    `bertkit.data.multiple_choice.featurize_multiple_choice`. Signatures: `serving_default`
    (question, choices) and `token_ids` (int32 [B, C, S] inputs)."""

    kind = "multiple-choice"

    def __init__(self, model, tokenizer, max_length: int = 128):
        super().__init__(model, tokenizer, max_length)

    @staticmethod
    def _outputs(logits) -> dict:
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
                "label_id": tf.argmax(logits, axis=-1, output_type=tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                                  tf.TensorSpec([None, None], tf.string, name="choices")], autograph=False)
    def predict_choices(self, question, choices):
        shape = tf.shape(choices)
        questions = tf.reshape(tf.repeat(question[:, None], shape[1], axis=1), [-1])
        flat = self.tokenizer(questions, tf.reshape(choices, [-1]))  # [B*C, S]
        features = {k: tf.reshape(v, [shape[0], shape[1], tf.shape(v)[-1]]) for k, v in flat.items()}
        return self._outputs(self.forward(features)["logits"])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.int32, name=s.name) for s in IDS],
                 autograph=False)
    def predict_ids(self, input_ids, token_type_ids, attention_mask):
        return self._outputs(self._forward(input_ids, token_type_ids, attention_mask)["logits"])

    def signatures(self) -> dict:
        return {"serving_default": self.predict_choices, "token_ids": self.predict_ids}

    def sample_inputs(self, texts) -> dict:
        choices = tf.stack([texts, texts[::-1], tf.fill(tf.shape(texts), "")], axis=1)  # [B, 3]
        return {"serving_default": {"question": tf.fill(tf.shape(texts), "Which one?"), "choices": choices}}


class EncoderModule(ServingModule):
    """The encoder alone: sequence_output [B, S, H], pooled_output [B, H], input_mask [B, S], and
    with a `pooling` mode (sentence-transformers' mean / cls / max / mean_sqrt_len, see
    bertkit.model.pooling) a sentence_embedding [B, D]: pooled, projected by `dense_layers`
    (sentence-transformers' Dense modules, `SentenceDense`; D their last width, else H), then
    L2-normalised if `normalize`."""

    kind = "encoder"

    def __init__(self, encoder, tokenizer, max_length: int = 512, pooling: str | None = "mean",
                 normalize: bool = False, dense_layers=()):
        from ..embeddings import POOLING_MODES

        if pooling is not None and pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)} or None, got {pooling!r}")
        if dense_layers and pooling is None:
            raise ValueError("Dense modules project a pooled vector: they need a pooling mode")
        dense = [layer.dense_config for layer in dense_layers]
        super().__init__(encoder, tokenizer, max_length, {"pooling": pooling, "normalize": normalize,
                                                          **({"dense": [[d.in_features, d.out_features, d.activation]
                                                                        for d in dense]} if dense else {})})
        from ..model.pooling import sentence_vectors

        self.pooling, self.normalize = pooling, normalize
        # The Dense weights join the encoder's as plain variables; like the forward pass, the
        # sentence head is a plain callable, not tracked (see the module docstring).
        self.model_variables = self.model_variables + [v.value for layer in dense_layers for v in layer.variables]
        self._sentence = functools.partial(sentence_vectors, pooling=pooling, dense_layers=tuple(dense_layers),
                                           normalize=normalize)

    def _outputs(self, outputs: dict, attention_mask) -> dict:
        result = {"sequence_output": outputs["sequence_output"], "pooled_output": outputs["pooled_output"],
                  "input_mask": attention_mask}
        if self.pooling is not None:
            result["sentence_embedding"] = self._sentence(outputs["sequence_output"], attention_mask)
        return result

    def _run(self, features):
        return self._outputs(self.forward(features), features["attention_mask"])

    @tf.function(input_signature=[TEXT], autograph=False)
    def predict_text(self, text):
        return self._run(self.tokenizer(text))

    @tf.function(input_signature=[TEXT, TEXT_PAIR], autograph=False)
    def predict_pair(self, text, text_pair):
        return self._run(self.tokenizer(text, text_pair))

    @tf.function(input_signature=IDS, autograph=False)
    def predict_ids(self, input_ids, token_type_ids, attention_mask):
        return self._outputs(self._forward(input_ids, token_type_ids, attention_mask), attention_mask)

    def signatures(self) -> dict:
        return {"serving_default": self.predict_text, "text": self.predict_text, "text_pair": self.predict_pair,
                "token_ids": self.predict_ids}
