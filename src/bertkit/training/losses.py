"""Losses of the pretraining and task heads, in the trainer's Loss protocol (see trainer.Loss).

Each is a sum over the micro-batch divided by a count over the whole global batch (`norms`), so
accumulation and data parallelism reproduce the one-big-batch update exactly.
"""

from __future__ import annotations

import tensorflow as tf

IGNORE_INDEX = -100  # token labels that take no part in the loss (non-first word pieces, padding)


def _ce(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def _correct(labels, logits):
    return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32)), tf.float32)


class PretrainingLoss:
    """MLM cross-entropy averaged over masked positions + NSP cross-entropy averaged over examples.

    labels: masked_lm_ids [B, P], masked_lm_weights [B, P] (1 real prediction, 0 padding),
    next_sentence_labels [B] (0 IsNext, 1 NotNext, as google-research).
    """

    def normalizers(self, labels):
        return {"masked": tf.reduce_sum(labels["masked_lm_weights"]),
                "examples": tf.shape(labels["next_sentence_labels"])[0]}

    def __call__(self, outputs, labels, norms):
        weights = tf.cast(labels["masked_lm_weights"], tf.float32)
        mlm_ce = _ce(labels["masked_lm_ids"], outputs["mlm_logits"]) * weights
        nsp_labels = tf.reshape(labels["next_sentence_labels"], [-1])
        nsp_ce = _ce(nsp_labels, outputs["nsp_logits"])
        mlm_loss = tf.reduce_sum(mlm_ce) / tf.maximum(norms["masked"], 1.0)
        nsp_loss = tf.reduce_sum(nsp_ce) / tf.maximum(norms["examples"], 1.0)
        n = tf.cast(tf.shape(nsp_labels)[0], tf.float32)
        metrics = {
            "mlm_loss": (tf.reduce_sum(mlm_ce), tf.reduce_sum(weights)),
            "nsp_loss": (tf.reduce_sum(nsp_ce), n),
            "mlm_accuracy": (tf.reduce_sum(_correct(labels["masked_lm_ids"], outputs["mlm_logits"]) * weights),
                             tf.reduce_sum(weights)),
            "nsp_accuracy": (tf.reduce_sum(_correct(nsp_labels, outputs["nsp_logits"])), n),
        }
        return mlm_loss + nsp_loss, metrics


class ClassificationLoss:
    """Cross-entropy over examples; labels: labels [B] (int), optional weight [B] for padding rows."""

    def normalizers(self, labels):
        return {"examples": tf.reduce_sum(self._weights(labels))}

    @staticmethod
    def _weights(labels):
        if "weight" in labels:
            return tf.cast(labels["weight"], tf.float32)
        return tf.ones(tf.shape(labels["labels"])[:1], tf.float32)

    def __call__(self, outputs, labels, norms):
        w = self._weights(labels)
        ce = _ce(labels["labels"], outputs["logits"]) * w
        metrics = {"accuracy": (tf.reduce_sum(_correct(labels["labels"], outputs["logits"]) * w), tf.reduce_sum(w))}
        return tf.reduce_sum(ce) / tf.maximum(norms["examples"], 1.0), metrics


class RegressionLoss:
    """Mean squared error over examples between logits[:, 0] and labels [B] (float), as HF's
    BertForSequenceClassification with problem_type="regression"."""

    def normalizers(self, labels):
        return {"examples": tf.cast(tf.shape(labels["labels"])[0], tf.float32)}

    def __call__(self, outputs, labels, norms):
        squared = tf.square(outputs["logits"][:, 0] - tf.cast(labels["labels"], tf.float32))
        metrics = {"mse": (tf.reduce_sum(squared), tf.cast(tf.shape(squared)[0], tf.float32))}
        return tf.reduce_sum(squared) / tf.maximum(norms["examples"], 1.0), metrics


class MultiLabelLoss:
    """Sigmoid binary cross-entropy averaged over examples and labels, as HF's
    BertForSequenceClassification with problem_type="multi_label_classification" (BCEWithLogitsLoss);
    labels: labels [B, C] multi-hot float."""

    def normalizers(self, labels):
        shape = tf.shape(labels["labels"])
        return {"elements": tf.cast(shape[0] * shape[1], tf.float32)}

    def __call__(self, outputs, labels, norms):
        targets = tf.cast(labels["labels"], tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=outputs["logits"])
        n = tf.cast(tf.size(bce), tf.float32)
        correct = tf.cast(tf.equal(outputs["logits"] > 0, targets > 0.5), tf.float32)
        metrics = {"bce": (tf.reduce_sum(bce), n), "label_accuracy": (tf.reduce_sum(correct), n)}
        return tf.reduce_sum(bce) / tf.maximum(norms["elements"], 1.0), metrics


class TokenClassificationLoss:
    """Cross-entropy over labelled word pieces; labels: labels [B, S] with -100 where ignored."""

    def normalizers(self, labels):
        return {"tokens": tf.reduce_sum(tf.cast(labels["labels"] != IGNORE_INDEX, tf.float32))}

    def __call__(self, outputs, labels, norms):
        tags = labels["labels"]
        keep = tf.cast(tags != IGNORE_INDEX, tf.float32)
        safe = tf.where(tags == IGNORE_INDEX, 0, tags)
        ce = _ce(safe, outputs["logits"]) * keep
        metrics = {"token_accuracy": (tf.reduce_sum(_correct(safe, outputs["logits"]) * keep), tf.reduce_sum(keep))}
        return tf.reduce_sum(ce) / tf.maximum(norms["tokens"], 1.0), metrics


class SpanLoss:
    """(CE(start) + CE(end)) / 2 over examples; labels: start_positions, end_positions [B]
    (0, the [CLS] index, when the answer is not in the window)."""

    def normalizers(self, labels):
        return {"examples": tf.shape(labels["start_positions"])[0]}

    def __call__(self, outputs, labels, norms):
        start = _ce(labels["start_positions"], outputs["start_logits"])
        end = _ce(labels["end_positions"], outputs["end_logits"])
        n = tf.cast(tf.shape(start)[0], tf.float32)
        both = _correct(labels["start_positions"], outputs["start_logits"]) * \
            _correct(labels["end_positions"], outputs["end_logits"])
        metrics = {"span_accuracy": (tf.reduce_sum(both), n)}
        return tf.reduce_sum(start + end) / 2.0 / tf.maximum(norms["examples"], 1.0), metrics


def _cosine_matrix(a, b):
    """[N, H], [M, H] -> [N, M] cosine similarities (sentence-transformers' cos_sim)."""
    return tf.matmul(tf.math.l2_normalize(a, axis=-1, epsilon=1e-24), tf.math.l2_normalize(b, axis=-1, epsilon=1e-24),
                     transpose_b=True)


class _EmbeddingLoss:
    """A loss on the cosine similarities of a batch of embeddings, times `scale` (1 / temperature)."""

    def __init__(self, scale: float = 20.0):
        self.scale = scale

    def normalizers(self, labels):
        return {"examples": tf.cast(tf.shape(labels["labels"])[0], tf.float32)}


class MultipleNegativesRankingLoss(_EmbeddingLoss):
    """In-batch negatives (sentence-transformers' MultipleNegativesRankingLoss, its default
    "query_to_doc" form): for anchor i, cross-entropy over scale * cos(anchor i, text j) for every
    other text j of the batch (each example's positive, then any further texts as hard negatives),
    the target being its own positive. outputs: embeddings [B, K, H], K >= 2 (anchor, positive,
    negatives...); labels: unused (pairs carry no target), present so the batch has a size.

    Under gradient accumulation each micro-batch is its own set of negatives (a smaller batch, as
    sentence-transformers without its cached variant)."""

    def __call__(self, outputs, labels, norms):
        embeddings = tf.cast(outputs["embeddings"], tf.float32)
        hidden = tf.shape(embeddings)[-1]
        anchors = embeddings[:, 0]  # [B, H]
        # sentence-transformers' order: all positives, then all first negatives, ...: [(K-1)*B, H]
        candidates = tf.reshape(tf.transpose(embeddings[:, 1:], [1, 0, 2]), [-1, hidden])
        scores = _cosine_matrix(anchors, candidates) * self.scale  # [B, (K-1)*B]
        targets = tf.range(tf.shape(anchors)[0])
        ce = _ce(targets, scores)
        n = tf.cast(tf.shape(ce)[0], tf.float32)
        metrics = {"accuracy": (tf.reduce_sum(_correct(targets, scores)), n)}
        return tf.reduce_sum(ce) / tf.maximum(norms["examples"], 1.0), metrics


class CoSENTLoss(_EmbeddingLoss):
    """CoSENT (sentence-transformers' CoSENTLoss; Su, 2022) on scored pairs: for every two pairs
    (i, j) of the batch with score_i < score_j, a penalty when cos_i is not below cos_j:
        loss = log(1 + sum over those (i, j) of exp(scale * (cos_i - cos_j))).
    Only the order of the scores counts, so STS-B's 0-5 scores need no rescaling. outputs:
    embeddings [B, 2, H]; labels: labels [B] float (the scores).

    A batch-level loss: each micro-batch's value is weighted by its share of the global batch."""

    def __call__(self, outputs, labels, norms):
        embeddings = tf.cast(outputs["embeddings"], tf.float32)
        a = tf.math.l2_normalize(embeddings[:, 0], axis=-1, epsilon=1e-24)
        b = tf.math.l2_normalize(embeddings[:, 1], axis=-1, epsilon=1e-24)
        cosine = tf.reduce_sum(a * b, axis=-1) * self.scale  # [B]
        scores = tf.cast(labels["labels"], tf.float32)
        differences = cosine[:, None] - cosine[None, :]  # [B, B]: cos_i - cos_j
        ordered = scores[:, None] < scores[None, :]  # score_i < score_j
        differences = tf.where(ordered, differences, -1e12)
        lse = tf.reduce_logsumexp(tf.concat([tf.zeros([1]), tf.reshape(differences, [-1])], axis=0))
        n = tf.cast(tf.shape(scores)[0], tf.float32)
        metrics = {"cosent": (lse * n, n)}
        return lse * n / tf.maximum(norms["examples"], 1.0), metrics
