"""WordPiece: greedy longest-match-first segmentation of one word into vocabulary pieces.

As in the original BERT (Schuster & Nakajima 2012; Devlin et al. 2019): from the left, take the
longest prefix that is in the vocabulary, then continue with `##`-prefixed pieces. If some
position has no match, the WHOLE word becomes `[UNK]` (not just the unmatched tail), and a word
longer than `max_input_chars_per_word` characters is `[UNK]` without trying.
"""

from __future__ import annotations

# HF transformers' limit (its WordPiece default, and what it uses for a directory without
# tokenizer.json whatever tokenizer_config.json says); google-research/bert used 200.
DEFAULT_MAX_INPUT_CHARS_PER_WORD = 100


class WordPiece:
    """Segment words into (piece id, start, end) with character offsets inside the word."""

    def __init__(self, vocab: dict[str, int], unk_token: str = "[UNK]", prefix: str = "##",
                 max_input_chars_per_word: int = DEFAULT_MAX_INPUT_CHARS_PER_WORD,
                 cache_size: int = 1 << 17):
        if unk_token not in vocab:
            raise ValueError(f"the unknown token {unk_token!r} is not in the vocab")
        self.vocab = vocab
        self.unk_id = vocab[unk_token]
        self.prefix = prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        # Longest vocab entry bounds the search: no need to try longer substrings.
        self._max_len = max((len(t) for t in vocab), default=1)
        self._cache: dict[str, tuple[tuple[int, int, int], ...]] = {}
        self._cache_size = cache_size
        self.cache_get = self._cache.get  # for hot loops: None on a miss

    def tokenize(self, word: str) -> tuple[tuple[int, int, int], ...]:
        """Pieces of `word` as (id, start, end); a failed word is one `[UNK]` covering it all."""
        hit = self._cache.get(word)
        if hit is None:
            hit = self._segment(word)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # natural text re-uses few words; a crude bound suffices
            self._cache[word] = hit
        return hit

    def _segment(self, word: str) -> tuple[tuple[int, int, int], ...]:
        n = len(word)
        unk = ((self.unk_id, 0, n),)
        if n > self.max_input_chars_per_word:
            return unk
        vocab, prefix, max_len = self.vocab, self.prefix, self._max_len
        pieces = []
        start = 0
        while start < n:
            end = min(n, start + max_len)
            while end > start:
                sub = word[start:end] if start == 0 else prefix + word[start:end]
                tid = vocab.get(sub)
                if tid is not None:
                    pieces.append((tid, start, end))
                    break
                end -= 1
            else:
                return unk
            start = end
        return tuple(pieces)
