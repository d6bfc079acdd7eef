"""bertkit's task losses as `keras.losses.Loss`, for `model.compile(loss=...)` and `fit`.

Each computes the fine-tuning engine's loss (`bertkit.training.losses`, checked against HF
transformers and sentence-transformers) on one batch, so a Keras model trained with them follows
the same objective as `bertkit finetune`. The sequence-level losses need none of these: Keras'
`SparseCategoricalCrossentropy(from_logits=True)` (classify, multiple choice),
`BinaryCrossentropy(from_logits=True)` (multilabel) and `MeanSquaredError` (regression) are
already what the engine computes (`BertTextClassifier.compile()` uses them).

    model.compile(optimizer="adamw", loss=bertkit.losses.TokenClassificationLoss())
    model.fit(features, tags)          # tags: int [batch, seq], -100 where a piece has no tag

Keras converts `y_true` to float32 before a loss sees it; ids and positions survive that exactly
(below 2**24).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .training import losses as engine

__all__ = ["TokenClassificationLoss", "SpanLoss", "MultipleNegativesRankingLoss", "CoSENTLoss"]


def _batch_loss(loss, outputs: dict, labels: dict):
    """The engine loss of one batch that is the whole global batch (its own normalisers)."""
    norms = {k: tf.cast(v, tf.float32) for k, v in loss.normalizers(labels).items()}  # as the trainer sums them
    value, _ = loss(outputs, labels, norms)
    return value


@keras.saving.register_keras_serializable(package="bertkit")
class TokenClassificationLoss(keras.losses.Loss):
    """Cross-entropy averaged over the labelled word pieces of the batch (NER).

    y_true: int [batch, seq] tag ids, -100 (`IGNORE_INDEX`) where a piece takes no part (a word's
    later pieces, special tokens, padding). y_pred: float [batch, seq, num_tags] logits.
    Returns a scalar: HF's `CrossEntropyLoss(ignore_index=-100)` over the flattened batch, and 0 for a
    batch without a labelled piece.
    """

    def __init__(self, name: str = "token_classification_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = {"labels": tf.cast(y_true, tf.int32)}  # Keras hands y_true over as float32
        return _batch_loss(engine.TokenClassificationLoss(), {"logits": y_pred}, labels)


@keras.saving.register_keras_serializable(package="bertkit")
class SpanLoss(keras.losses.Loss):
    """Extractive QA: (CE(start) + CE(end)) / 2, averaged over the batch (google-research/bert's
    and HF's `BertForQuestionAnswering` loss).

    y_true: int [batch, 2], the answer's (start, end) piece positions (0, the [CLS], when the
    answer is not in the window). y_pred: float [batch, seq, 2], start then end logits stacked on
    the last axis (`keras.ops.stack([start_logits, end_logits], -1)`).
    """

    def __init__(self, name: str = "span_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        outputs = {"start_logits": y_pred[..., 0], "end_logits": y_pred[..., 1]}
        positions = tf.cast(y_true, tf.int32)  # Keras hands y_true over as float32
        labels = {"start_positions": positions[:, 0], "end_positions": positions[:, 1]}
        return _batch_loss(engine.SpanLoss(), outputs, labels)


class _EmbeddingLoss(keras.losses.Loss):
    def __init__(self, scale: float = 20.0, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="bertkit")
class MultipleNegativesRankingLoss(_EmbeddingLoss):
    """In-batch negatives (sentence-transformers' `MultipleNegativesRankingLoss`): for each anchor,
    cross-entropy over `scale` x cosine with every positive (and hard negative) of the batch, the
    target being its own positive.

    y_true: ignored (any [batch] array: pairs carry no target). y_pred: float [batch, K, hidden]
    embeddings of (anchor, positive, hard negatives...), K >= 2. `scale`: 1 / temperature (20, as
    sentence-transformers).
    """

    def __init__(self, scale: float = 20.0, name: str = "multiple_negatives_ranking_loss", **kwargs):
        super().__init__(scale=scale, name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = {"labels": tf.zeros(tf.shape(y_pred)[:1])}
        return _batch_loss(engine.MultipleNegativesRankingLoss(self.scale), {"embeddings": y_pred}, labels)


@keras.saving.register_keras_serializable(package="bertkit")
class CoSENTLoss(_EmbeddingLoss):
    """CoSENT on scored pairs (sentence-transformers' `CoSENTLoss`; Su, 2022):
    log(1 + sum over pairs (i, j) with score_i < score_j of exp(scale * (cos_i - cos_j))).

    y_true: float [batch] similarity scores (only their order counts). y_pred: float [batch, 2,
    hidden], the two texts' embeddings.
    """

    def __init__(self, scale: float = 20.0, name: str = "cosent_loss", **kwargs):
        super().__init__(scale=scale, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return _batch_loss(engine.CoSENTLoss(self.scale), {"embeddings": y_pred}, {"labels": y_true})
