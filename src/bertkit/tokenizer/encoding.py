"""`Encoding` (one tokenized input, HF-style) and the truncation / padding rules.

Truncation follows HF `tokenizers` exactly (not transformers' one-token-at-a-time loop), so
that a model fine-tuned with either gets the same windows:

* longest_first: if the pair is too long, the shorter sequence keeps
  `max(len_short, budget - len_short)` capped so that both fit, and when neither fits in half
  the budget, each gets `budget // 2` and the originally longer one (the second on a tie) gets
  the odd token.
* only_first / only_second: cut that sequence only; if that is not enough, it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


@dataclass
class Encoding:
    """One encoded input. Parallel lists, one entry per token.

    offsets are character (start, end) into the ORIGINAL text of the token's own sequence,
    (0, 0) for special and padding tokens; word_ids / sequence_ids are None there.
    """

    ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)
    type_ids: list[int] = field(default_factory=list)
    attention_mask: list[int] = field(default_factory=list)
    word_ids: list[int | None] = field(default_factory=list)
    sequence_ids: list[int | None] = field(default_factory=list)
    special_tokens_mask: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def char_to_token(self, char_index: int, sequence_index: int = 0) -> int | None:
        """Index of the token covering character `char_index` of sequence `sequence_index`."""
        for t, ((start, end), seq) in enumerate(zip(self.offsets, self.sequence_ids)):
            if seq == sequence_index and start <= char_index < end:
                return t
        return None

    def pad(self, length: int, pad_id: int, pad_token: str) -> None:
        """Pad on the right to `length` (HF: pad type id 0, special_tokens_mask 1)."""
        n = length - len(self.ids)
        if n <= 0:
            return
        self.ids += [pad_id] * n
        self.tokens += [pad_token] * n
        self.offsets += [(0, 0)] * n
        self.type_ids += [0] * n
        self.attention_mask += [0] * n
        self.word_ids += [None] * n
        self.sequence_ids += [None] * n
        self.special_tokens_mask += [1] * n


def normalize_truncation(truncation) -> str | None:
    """Accepts True/False/None or a strategy name; returns the strategy or None."""
    if truncation is True:
        return "longest_first"
    if truncation in (False, None, "do_not_truncate"):
        return None
    if truncation not in TRUNCATION_STRATEGIES:
        raise ValueError(f"truncation must be one of {TRUNCATION_STRATEGIES} or False, got {truncation!r}")
    return truncation


def normalize_padding(padding) -> str | None:
    if padding is True:
        return "longest"
    if padding in (False, None, "do_not_pad"):
        return None
    if padding not in ("longest", "max_length"):
        raise ValueError(f"padding must be False, 'longest' or 'max_length', got {padding!r}")
    return padding


def truncated_lengths(len_a: int, len_b: int | None, budget: int, strategy: str) -> tuple[int, int]:
    """How many tokens of each sequence to keep so that they fit in `budget` (HF rules)."""
    if budget < 0:
        raise ValueError("max_length is smaller than the number of special tokens it must hold")
    if len_b is None:
        if strategy == "only_second":
            raise ValueError("truncation='only_second' needs a pair of sequences")
        return min(len_a, budget), 0
    total = len_a + len_b
    if total <= budget:
        return len_a, len_b
    if strategy in ("only_first", "only_second"):
        target = len_a if strategy == "only_first" else len_b
        remove = total - budget
        if target <= remove:
            which = "first" if strategy == "only_first" else "second"
            raise ValueError(f"truncation={strategy!r}: the {which} sequence ({target} tokens) is too short "
                             f"to remove {remove} tokens; use 'longest_first' or a larger max_length")
        return (len_a - remove, len_b) if strategy == "only_first" else (len_a, len_b - remove)
    return _longest_first(len_a, len_b, budget)


def _longest_first(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    swap = len_a > len_b
    short, long_ = (len_b, len_a) if swap else (len_a, len_b)
    if short > budget:
        long_ = short
    else:
        long_ = max(short, budget - short)
    if short + long_ > budget:
        short = budget // 2
        long_ = short + budget % 2
    keep_a, keep_b = (long_, short) if swap else (short, long_)
    return min(keep_a, len_a), min(keep_b, len_b)
