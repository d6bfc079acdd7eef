"""Extractive QA in the graph: (question, context) strings -> answer text, character span, score.

The same steps as the Python path (`bertkit.data.squad.featurize_squad` / `postprocess_squad`):
  1. the question's pieces, cut to max_query_length; the context's pieces with character offsets;
  2. windows over the context of `max_length - len(question) - 3` pieces, `doc_stride` apart:
     `[CLS] question [SEP] window [SEP]` (long contexts are covered, never truncated);
  3. per window, the n_best_size best start and end positions; a (start, end) pair is a candidate
     if both lie in the context, end >= start, it spans at most max_answer_length pieces and the
     window has the max context for the start piece;
  4. per question, the best candidate over all its windows (score = start + end logit), its
     probability (softmax over the n best, plus the null answer for SQuAD 2.0 models) and, for
     SQuAD 2.0 models, the null answer ("" at -1) when [CLS] beats the best span by more than
     null_score_diff_threshold.

As in the Python post-processing (bertkit.data.squad.postprocess_squad), padding positions never
enter the n best, so the answer does not depend on how a batch was padded.

Outputs of `serving_default(question, context)`: answer [B] string, start / end [B] int32
(characters of the context, end exclusive, -1 for no answer), score, probability, null_score [B].
"""

from __future__ import annotations

import tensorflow as tf

from .modules import IDS, ServingModule
from .text import constant_column, doc_windows, max_context_owner, model_inputs, substrings, window_slices

QUESTION = tf.TensorSpec([None], tf.string, name="question")
CONTEXT = tf.TensorSpec([None], tf.string, name="context")
NEG_INF = float("-inf")


class QaModule(ServingModule):
    kind = "qa"

    def __init__(self, model, tokenizer, max_length: int = 384, doc_stride: int = 128,
                 max_query_length: int = 64, max_answer_length: int = 30, n_best_size: int = 20,
                 version_2: bool = False, null_score_diff_threshold: float = 0.0):
        if max_length - max_query_length - 3 < 1:
            raise ValueError(f"max_length {max_length} leaves no room for the context after a "
                             f"{max_query_length}-piece question")
        options = {"doc_stride": doc_stride, "max_query_length": max_query_length,
                   "max_answer_length": max_answer_length, "n_best_size": n_best_size,
                   "version_2": bool(version_2), "null_score_diff_threshold": float(null_score_diff_threshold)}
        super().__init__(model, tokenizer, max_length, options)
        self.doc_stride, self.max_query_length = doc_stride, max_query_length
        self.max_answer_length, self.n_best_size = max_answer_length, n_best_size
        self.version_2, self.threshold = bool(version_2), float(null_score_diff_threshold)

    @tf.function(input_signature=[QUESTION, CONTEXT], autograph=False)
    def predict(self, question, context):
        query = self.tokenizer.tokenize(question)["ids"][:, : self.max_query_length]
        ctx = self.tokenizer.tokenize(context)
        query_length = tf.cast(query.row_lengths(), tf.int32)
        windows = doc_windows(tf.cast(ctx["ids"].row_lengths(), tf.int32),
                              self.max_length - query_length - 3, self.doc_stride)
        example, rows = windows["example"], tf.size(windows["example"])
        ids = tf.concat([constant_column(rows, self.cls_id), tf.gather(query, example),
                         constant_column(rows, self.sep_id), window_slices(ctx["ids"], windows),
                         constant_column(rows, self.sep_id)], axis=1)
        context_offset = tf.gather(query_length, example) + 2                          # [R]
        position = tf.ragged.range(tf.cast(ids.row_lengths(), tf.int32))
        features = model_inputs(ids, tf.cast(position >= context_offset[:, None], tf.int32), self.pad_id)
        logits = self.forward(features)
        spans = self._window_spans(windows, ctx, context_offset, tf.shape(features["input_ids"])[1])
        return self._best_answers(context, windows, logits, features["attention_mask"], spans)

    @tf.function(input_signature=IDS, autograph=False)
    def predict_ids(self, input_ids, token_type_ids, attention_mask):
        logits = self._forward(input_ids, token_type_ids, attention_mask)
        return {"start_logits": logits["start_logits"], "end_logits": logits["end_logits"]}

    def signatures(self) -> dict:
        return {"serving_default": self.predict, "token_ids": self.predict_ids}

    def sample_inputs(self, texts) -> dict:
        return {"serving_default": {"question": tf.constant(["What jumps?", "Who?"]), "context": texts}}

    # ---- helpers --------------------------------------------------------------------------

    def _window_spans(self, windows, ctx, context_offset, width) -> dict:
        """Per window row and position [R, S]: in the context? max context? character span."""
        piece = tf.range(width)[None, :] - context_offset[:, None]                   # context piece in window
        in_context = (piece >= 0) & (piece < windows["length"][:, None])
        position = tf.where(in_context, piece + windows["start"][:, None], 0)        # piece in the context
        rows = tf.shape(piece)[0]
        example = tf.repeat(windows["example"][:, None], width, axis=1)
        owner = tf.reshape(max_context_owner(windows, tf.reshape(example, [-1]), tf.reshape(position, [-1])),
                           [rows, width])
        flat = tf.gather(tf.cast(ctx["ids"].row_starts(), tf.int32), windows["example"])[:, None] + position
        flat = tf.where(in_context, flat, 0)

        def chars(key):
            values = ctx[key].flat_values
            return tf.where(in_context, tf.gather(tf.concat([values, [0]], 0), flat), -1)

        return {"start_ok": in_context & (owner == windows["index"][:, None]), "end_ok": in_context,
                "char_start": chars("starts"), "char_end": chars("ends")}

    def _best_answers(self, context, windows, logits, attention_mask, spans) -> dict:
        real = attention_mask > 0
        start_logits = tf.where(real, logits["start_logits"], NEG_INF)
        end_logits = tf.where(real, logits["end_logits"], NEG_INF)
        k = tf.minimum(self.n_best_size, tf.shape(start_logits)[1])
        top_start, s = tf.math.top_k(start_logits, k)                                 # [R, k]
        top_end, e = tf.math.top_k(end_logits, k)
        valid = (tf.gather(spans["start_ok"], s, batch_dims=1)[:, :, None]
                 & tf.gather(spans["end_ok"], e, batch_dims=1)[:, None, :]
                 & (e[:, None, :] >= s[:, :, None])
                 & (e[:, None, :] - s[:, :, None] + 1 <= self.max_answer_length))       # [R, k, k]
        score = tf.where(valid, top_start[:, :, None] + top_end[:, None, :], NEG_INF)
        char_start = tf.broadcast_to(tf.gather(spans["char_start"], s, batch_dims=1)[:, :, None], tf.shape(score))
        char_end = tf.broadcast_to(tf.gather(spans["char_end"], e, batch_dims=1)[:, None, :], tf.shape(score))

        def per_example(x, default):  # [R, k, k] -> [B, candidates], in window then n-best order
            flat = tf.reshape(x, [tf.shape(x)[0], -1])
            ragged = tf.RaggedTensor.from_row_lengths(flat, windows["count"]).merge_dims(1, 2)
            # at least one column, so [:, 0] below is in range also for an empty batch
            shape = tf.stack([ragged.nrows(), tf.maximum(ragged.bounding_shape(axis=1), 1)])
            return ragged.to_tensor(default, shape=shape)

        candidates = per_example(score, NEG_INF)
        best_scores, best = tf.math.top_k(candidates, tf.minimum(self.n_best_size, tf.shape(candidates)[1]))
        start = tf.gather(per_example(char_start, -1), best[:, 0], batch_dims=1)
        end = tf.gather(per_example(char_end, -1), best[:, 0], batch_dims=1)
        null_score = tf.math.unsorted_segment_min(logits["start_logits"][:, 0] + logits["end_logits"][:, 0],
                                                  windows["example"], tf.size(context))
        # Probabilities over the n best (and the null answer for SQuAD 2.0), as run_squad's n-best.
        pool = tf.concat([best_scores, null_score[:, None]], axis=1) if self.version_2 else best_scores
        probs = tf.nn.softmax(pool, axis=-1)
        has_span = tf.math.is_finite(best_scores[:, 0])
        use_null = ~has_span
        if self.version_2:
            use_null |= null_score - best_scores[:, 0] > self.threshold
        null_probability = probs[:, -1] if self.version_2 else tf.zeros_like(null_score)
        start = tf.where(use_null, -1, start)
        end = tf.where(use_null, -1, end)
        answer = tf.where(use_null, "", substrings(context, tf.maximum(start, 0), tf.maximum(end, 0)))
        return {"answer": answer, "start": start, "end": end,
                "score": tf.where(use_null, null_score, best_scores[:, 0]),
                "probability": tf.where(use_null, null_probability, tf.where(has_span, probs[:, 0], 0.0)),
                "null_score": null_score}
