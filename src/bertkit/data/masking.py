"""Masked-LM masking, written twice side by side: in Python per instance (static masking, when the
records are written: `create_masked_lm_predictions`) and as TF ops per batch (dynamic masking in
tf.data: `DynamicMasking`). Both follow google-research/bert's rules (80% [MASK], 10% random, 10%
kept; whole-word masking optional) from the same vocabulary facts (`MaskingSpec`); the tests hold
them to the same distribution. TensorFlow is imported only when the TF version is used.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
    """The vocabulary facts masking needs, shared by static (Python) and dynamic (tf.data) masking.

    special_ids: never masked, never used as a random replacement ([PAD] [UNK] [CLS] [SEP] [MASK]...).
    is_subword[id]: True for "##" continuation pieces (whole-word masking keeps them with their word).
    random_ids: candidates for the 10% random replacement: every non-special id. Deviation: google-research
      draws from the whole vocabulary, specials included; a random [CLS]/[PAD] mid-sentence teaches nothing.
    """

    vocab_size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    unk_id: int
    special_ids: frozenset[int]
    is_subword: np.ndarray
    random_ids: np.ndarray
    is_special: np.ndarray  # bool [vocab_size], special_ids as a lookup table
    subword_ids: frozenset[int]  # is_subword as a set: faster than numpy scalar indexing in Python loops

    @classmethod
    def from_vocab(cls, tokens: Sequence[str], *, pad_id: int, cls_id: int, sep_id: int, mask_id: int,
                   unk_id: int, special_ids: Iterable[int] = ()) -> "MaskingSpec":
        """`tokens[i]` is the piece with id i (vocab.txt order)."""
        special = frozenset(int(i) for i in special_ids) | {pad_id, cls_id, sep_id, mask_id, unk_id}
        is_subword = np.array([t.startswith("##") for t in tokens], dtype=bool)
        is_special = np.zeros(len(tokens), dtype=bool)
        is_special[[i for i in special if 0 <= i < len(tokens)]] = True
        random_ids = np.flatnonzero(~is_special).astype(np.int32)
        return cls(len(tokens), pad_id, cls_id, sep_id, mask_id, unk_id, special, is_subword, random_ids,
                   is_special, frozenset(np.flatnonzero(is_subword).tolist()))

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "MaskingSpec":
        """Duck-typed: `vocab` (token -> id), `pad_id`, `cls_id`, `sep_id`, `mask_id`, `unk_id`,
        `special_ids`."""
        return cls.from_vocab(vocab_tokens(tokenizer), pad_id=tokenizer.pad_id, cls_id=tokenizer.cls_id,
                              sep_id=tokenizer.sep_id, mask_id=tokenizer.mask_id, unk_id=tokenizer.unk_id,
                              special_ids=getattr(tokenizer, "special_ids", ()))


def vocab_tokens(tokenizer) -> list[str]:
    """The vocabulary as a list, token i at index i (vocab.txt order), from `tokenizer.vocab`."""
    tokens = [""] * (max(tokenizer.vocab.values()) + 1)
    for token, i in tokenizer.vocab.items():
        tokens[i] = token
    return tokens


def create_masked_lm_predictions(input_ids: list[int], masked_lm_prob: float, max_predictions: int,
                                 spec: MaskingSpec, rng: random.Random, whole_word_mask: bool = False,
                                 ) -> tuple[list[int], list[int], list[int]]:
    """Static masking. Returns (masked input ids, positions ascending, original ids at those positions).

    num_to_predict = min(max_predictions, max(1, round(n * masked_lm_prob))) with n the number
    of non-special tokens (Deviation: the reference counts [CLS]/[SEP] in n too). Each chosen token is
    replaced by [MASK] 80% of the time, kept 10%, and replaced by a random token 10%.
    """
    special = spec.special_ids
    candidates = [i for i, token in enumerate(input_ids) if token not in special]
    num_to_predict = min(max_predictions, max(1, int(round(len(candidates) * masked_lm_prob))),
                         len(candidates))  # 0 only if every token is [UNK]
    if whole_word_mask:
        chosen = _choose_whole_words(input_ids, candidates, num_to_predict, spec.subword_ids, rng)
    else:
        # A uniform random subset in random order: the same distribution as the reference's full
        # `rng.shuffle` of the candidates followed by taking the first ones, in fewer draws.
        chosen = rng.sample(candidates, num_to_predict)

    output = list(input_ids)
    for index in chosen:
        r = rng.random()
        if r < 0.8:  # 80% of the time, replace with [MASK]
            output[index] = spec.mask_id
        elif r >= 0.9:  # 10% of the time, replace with a random word; 10%, keep the original
            output[index] = int(spec.random_ids[rng.randrange(len(spec.random_ids))])
    positions = sorted(chosen)
    return output, positions, [input_ids[p] for p in positions]


def _choose_whole_words(input_ids: list[int], candidates: list[int], num_to_predict: int,
                        subword_ids: frozenset[int], rng: random.Random) -> list[int]:
    # Whole Word Masking means that we mask all of the wordpieces corresponding to an original word.
    # When a word has been split into WordPieces, the first token does not have any marker and any
    # subsequence tokens are prefixed with ##. So whenever we see the ## token, we append it to the
    # previous set of word indexes. A ## piece right after [CLS]/[SEP] (B truncated from the front)
    # starts a word of its own rather than joining the last word of A.
    words: list[list[int]] = []
    for i in candidates:
        if words and words[-1][-1] == i - 1 and input_ids[i] in subword_ids:
            words[-1].append(i)
        else:
            words.append([i])
    # Visit the words in random order: a partial Fisher-Yates shuffle has the same distribution as the
    # reference's full `rng.shuffle` but stops once enough tokens are chosen.
    chosen: list[int] = []
    n = len(words)
    for j in range(n):
        if len(chosen) >= num_to_predict:
            break
        k = rng.randrange(j, n)
        words[j], words[k] = words[k], words[j]
        # If adding a whole-word mask would exceed the maximum number of predictions, then just skip
        # this candidate.
        if len(chosen) + len(words[j]) <= num_to_predict:
            chosen.extend(words[j])
    return chosen


class DynamicMasking:
    """Masked-LM masking as TF ops on a batch: the same rules as `create_masked_lm_predictions`.

    For each row: n = non-special tokens, k = min(P, max(1, round(n * masked_lm_prob))) tokens (whole
    words with whole_word_mask) are chosen uniformly at random; 80% become [MASK], 10% a random non-special
    token, 10% stay. Stateless random ops: the result depends only on the inputs and `seed`.

    Whole words in-graph: a word starts at a non-special token that is not a "##" piece (or follows a
    special token); words are visited in random order and taken greedily while they fit the budget k,
    skipping those that do not (the reference rule), in a `tf.while_loop` over the words.
    """

    def __init__(self, spec: MaskingSpec, max_predictions: int, masked_lm_prob: float = 0.15,
                 whole_word_mask: bool = False):
        import tensorflow as tf

        self.max_predictions = max_predictions
        self.masked_lm_prob = masked_lm_prob
        self.whole_word_mask = whole_word_mask
        self.mask_id = spec.mask_id
        self.is_special = tf.constant(spec.is_special)
        self.is_subword = tf.constant(spec.is_subword)
        self.random_ids = tf.constant(spec.random_ids, tf.int32)

    def __call__(self, input_ids, seed) -> dict:
        """input_ids: int32 [B, S]; seed: int [2]. Returns masked `input_ids` [B, S] and
        `masked_lm_positions`, `masked_lm_ids` int32 [B, P], `masked_lm_weights` float32 [B, P]."""
        import tensorflow as tf

        input_ids = tf.cast(input_ids, tf.int32)
        batch, seq_len = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
        candidate = ~tf.gather(self.is_special, input_ids)  # [B, S]; False at [CLS] [SEP] [PAD] ...
        num_candidates = tf.reduce_sum(tf.cast(candidate, tf.float64), axis=1)
        # float64 and round-half-even: exactly Python's int(round(n * p)).
        k = tf.cast(tf.round(num_candidates * self.masked_lm_prob), tf.int32)
        k = tf.minimum(self.max_predictions, tf.maximum(1, k))[:, None]  # [B, 1]

        score = tf.random.stateless_uniform([batch, seq_len], seeds[0])
        if self.whole_word_mask:
            selected = self._select_words(input_ids, candidate, score, k, seq_len)
        else:
            # Each token is its own word: take the k candidates with the smallest random scores.
            order = tf.argsort(tf.where(candidate, score, 2.0), axis=1, stable=True)
            rank = tf.argsort(order, axis=1, stable=True)  # inverse permutation
            selected = candidate & (rank < k)

        # 80% [MASK], 10% keep, 10% random token (same thresholds as the Python version).
        r = tf.random.stateless_uniform([batch, seq_len], seeds[1])
        random_index = tf.random.stateless_uniform(
            [batch, seq_len], seeds[2], maxval=tf.size(self.random_ids), dtype=tf.int32)
        random_tokens = tf.gather(self.random_ids, random_index)
        masked = tf.where(selected & (r < 0.8), self.mask_id, input_ids)
        masked = tf.where(selected & (r >= 0.9), random_tokens, masked)

        # Positions ascending, padded with 0 (weight 0) to P: sort the selected positions to the front.
        positions = tf.range(seq_len)[None, :]
        key = tf.sort(tf.where(selected, positions, seq_len + positions), axis=1)[:, :self.max_predictions]
        valid = key < seq_len
        masked_positions = tf.where(valid, key, 0)
        labels = tf.where(valid, tf.gather(input_ids, masked_positions, batch_dims=1), 0)
        return {"input_ids": masked, "masked_lm_positions": masked_positions, "masked_lm_ids": labels,
                "masked_lm_weights": tf.cast(valid, tf.float32)}

    def _select_words(self, input_ids, candidate, score, k, seq_len):
        import tensorflow as tf

        subword = tf.gather(self.is_subword, input_ids) & candidate
        prev_candidate = tf.pad(candidate[:, :-1], [[0, 0], [1, 0]])
        starts = candidate & ~(subword & prev_candidate)
        word = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1  # word index of each token
        word = tf.where(candidate, word, seq_len)  # non-candidates: a slot one_hot ignores
        sizes = tf.reduce_sum(tf.one_hot(word, seq_len, dtype=tf.int32), axis=1)  # [B, S] pieces per word
        # A random order of the words (one uniform score per word slot), missing words last.
        word_score = tf.where(sizes > 0, score, 2.0)
        order = tf.argsort(word_score, axis=1, stable=True)
        sorted_sizes = tf.gather(sizes, order, batch_dims=1)

        # Greedy in that order: take a word if it still fits the budget, else skip it. The loop stops
        # once every row has its k tokens (after ~k words, not S, in practice).
        budget = k[:, 0]
        slots = tf.range(seq_len)[None, :]

        def fill(j, total, taken_sorted):
            size = sorted_sizes[:, j]
            fits = (size > 0) & (total + size <= budget)
            return j + 1, tf.where(fits, total + size, total), taken_sorted | (fits[:, None] & (slots == j))

        _, _, taken_sorted = tf.while_loop(
            lambda j, total, _: (j < seq_len) & tf.reduce_any(total < budget), fill,
            (tf.constant(0), tf.zeros_like(budget), tf.zeros_like(sorted_sizes, tf.bool)))
        taken = tf.gather(taken_sorted, tf.argsort(order, axis=1, stable=True), batch_dims=1)
        return candidate & tf.gather(taken, tf.minimum(word, seq_len - 1), batch_dims=1)
