"""In-graph BERT tokenizer: strings -> input_ids / token_type_ids / attention_mask, in TensorFlow.

Runs inside `tf.data.Dataset.map`, `tf.function` and exported SavedModels, and gives the SAME
ids (and character offsets) as the Python `BertTokenizer`, hence as HF `tokenizers`.

Why not just `tensorflow_text.FastBertTokenizer`: its normaliser and pre-tokenizer use ICU's
(newer) Unicode classes, it splits `[MASK]` in text into `[`, `mask`, `]`, and it limits words
in bytes rather than characters, so ids differ from the reference on real data. Instead:

0. rows that are plain printable ASCII without a special token's first character (most English
   text) take a shortcut: lower-case + FastWordpiece's own end-to-end pre-tokenizer, which for
   ASCII splits exactly like BERT (checked on every ASCII text of the shared data);
   all other rows go through steps 1-4;
1. decode UTF-8 to code points; find special tokens in the RAW text (as HF does);
2. normalise every code point through tables that tabulate the Python normaliser
   (`charmap.py`): clean, CJK, NFD + strip accents, lower-case, class of each output char;
3. group the normalised characters into words (runs of WORD chars; each ISOLATED char alone);
4. WordPiece with tensorflow-text's `FastWordpieceTokenizer(no_pretokenization=True)`, which
   implements the same greedy longest-match-first (Song et al. 2021, "Fast WordPiece");
5. pack [CLS] A [SEP] B [SEP], truncate (HF rules), pad.

All steps are vectorised over the flattened batch (no per-string loops). Letters for shapes:
B = batch, C = code points in the batch, N = normalised characters, W = words, T = tokens.

Known gap: NFD's canonical re-ordering of combining marks is done by the Python path only. It
changes results only with strip_accents and a run of marks containing one of the ~80 marks the
reference re-orders but does not strip (musical symbols, Glagolitic, Adlam, a few viramas).
SavedModels that contain this module need `import tensorflow_text` before loading.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from .basic import ISOLATED, WHITESPACE, WORD
from .charmap import SPECIAL_ROW, build_char_tables
from .encoding import normalize_padding, normalize_truncation

_UTF8_LIMITS = (0x80, 0x800, 0x10000)  # code points below these take 1, 2, 3 bytes; else 4


class FastBertTokenizer(tf.Module):
    """In-graph equivalent of `BertTokenizer.encode_batch` (build it with `tok.in_graph(...)`).

    Args:
      tokenizer: the Python `BertTokenizer` whose vocab and settings to use.
      max_length: output length with padding="max_length"; truncation limit (None: no limit).
      padding: "max_length" (fixed [B, max_length], what SavedModels want) or "longest".
      truncation: "longest_first", "only_first", "only_second" or False. In-graph, an
        only_* strategy that cannot fit falls back to cutting the other sequence (no error).
      return_offsets: also return `offsets` int32 [B, S, 2] (characters of each sequence's
        original string, (0, 0) for special / padding tokens) and `word_ids` ([B, S], -1 there).

    Call with a string tensor [B] (and optionally a second one [B] for pairs); returns a dict
    of int32 [B, S] tensors `input_ids`, `token_type_ids`, `attention_mask`. A scalar string
    gives [S] tensors, so `dataset.map(tokenizer).batch(n)` works with padding="max_length".
    """

    def __init__(self, tokenizer, max_length: int | None = 512, padding="max_length",
                 truncation="longest_first", return_offsets: bool = False, ascii_fast_path: bool = True,
                 name: str | None = None):
        super().__init__(name=name)
        self.max_length = max_length
        self.padding = normalize_padding(padding) or "longest"
        if self.padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        self.truncation = normalize_truncation(truncation) if max_length is not None else None
        self.return_offsets = return_offsets
        self.max_input_chars_per_word = tokenizer.max_input_chars_per_word
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id
        self.unk_token = tokenizer.inv_vocab[tokenizer.unk_id]
        self._init_specials(list(tokenizer.special_tokens.values()))
        tables = build_char_tables(tokenizer.lower_case, tokenizer.strip_accents, tokenizer.tokenize_chinese_chars)
        self._page_index = tf.constant(tables.page_index)
        self._pages = tf.constant(tables.pages)
        self._row_splits = tf.constant(tables.row_splits)
        self._row_values = tf.constant(tables.values)
        self._row_classes = tf.constant(tables.classes)
        # Words longer than max_input_chars_per_word are replaced by [UNK] before WordPiece,
        # so the byte limit only has to be high enough never to fire on its own.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(tokenizer.inv_vocab), suffix_indicator="##", unknown_token=self.unk_token,
            max_bytes_per_word=4 * self.max_input_chars_per_word + 8, no_pretokenization=True,
            token_out_type=tf.int32)
        self._init_ascii_path(tokenizer, ascii_fast_path)

    def _init_ascii_path(self, tokenizer, enabled: bool) -> None:
        self.ascii_fast_path = enabled
        self.lower_case = tokenizer.lower_case
        if not enabled:
            return
        # For ASCII a byte is a character, so the byte limit IS the character limit here.
        self._wordpiece_ascii = tf_text.FastWordpieceTokenizer(
            vocab=list(tokenizer.inv_vocab), suffix_indicator="##", unknown_token=self.unk_token,
            max_bytes_per_word=self.max_input_chars_per_word, no_pretokenization=False, token_out_type=tf.int32)
        # A word's first piece is never a "##" entry (a "#" is always a word of its own), so
        # "##" pieces are exactly the continuations: that recovers word ids.
        self._is_suffix = tf.constant([t.startswith("##") for t in tokenizer.inv_vocab])
        firsts = {t[0] for t in tokenizer.special_tokens.values()}
        allowed = "".join(f"\\x{c:02x}" for c in range(0x20, 0x7F) if chr(c) not in firsts)
        self._ascii_pattern = f"[\\t\\n\\r{allowed}]*"

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "FastBertTokenizer":
        return cls(tokenizer, **kwargs)

    def _init_specials(self, specials: list[str]) -> None:
        for a in specials:
            for b in specials:
                overlap = any(a[-k:] == b[:k] for k in range(1, min(len(a), len(b))))
                if (a != b and a in b) or overlap:
                    raise NotImplementedError(f"special tokens {a!r} and {b!r} can overlap; the in-graph "
                                              "matcher assumes they cannot (true for BERT's [XXX] tokens)")
        width = max(len(t) for t in specials)
        codes = [[ord(c) for c in t] + [-2] * (width - len(t)) for t in specials]
        self._special_codes = tf.constant(codes, tf.int32)                           # [S, width]
        self._special_lengths = tf.constant([len(t) for t in specials], tf.int32)    # [S]
        self._special_firsts = tf.constant(sorted({ord(t[0]) for t in specials}), tf.int32)
        self._special_width = width

    # ---- public -------------------------------------------------------------------------

    def __call__(self, texts, pairs=None) -> dict:
        """Encode a batch [B] (outputs [B, S]) or one string [] (outputs [S], for per-example maps)."""
        texts = tf.convert_to_tensor(texts, tf.string)
        scalar = texts.shape.rank == 0
        if scalar:
            texts = texts[None]
            pairs = None if pairs is None else tf.convert_to_tensor(pairs, tf.string)[None]
        a = self.tokenize(texts)
        b = self.tokenize(tf.convert_to_tensor(pairs, tf.string)) if pairs is not None else None
        out = self._pack(a, b)
        return {k: v[0] for k, v in out.items()} if scalar else out

    def pack_pieces(self, ids, pair_ids=None) -> dict:
        """Model inputs from word-piece ids already cut out (ragged int [B, (T)], e.g. document
        windows): `[CLS] A [SEP] (B [SEP])`, truncated and padded as this tokenizer is configured.
        Tokenizers that return offsets need the texts: use `__call__`."""
        if self.return_offsets:
            raise ValueError("pack_pieces needs a tokenizer without return_offsets")
        return self._pack({"ids": ids}, None if pair_ids is None else {"ids": pair_ids})

    def tokenize(self, texts) -> dict:
        """Word pieces of each string: dict of ragged [B, (T)] `ids`, `word_ids`, `starts`, `ends`."""
        texts = tf.convert_to_tensor(texts, tf.string)
        if not self.ascii_fast_path:
            return self._tokenize_general(texts)
        simple = tf.strings.regex_full_match(texts, self._ascii_pattern)
        rows_a, rows_b = tf.where(simple)[:, 0], tf.where(~simple)[:, 0]
        a = self._tokenize_ascii(tf.gather(texts, rows_a))
        b = self._tokenize_general(tf.gather(texts, rows_b))
        back = tf.math.invert_permutation(tf.concat([rows_a, rows_b], 0))
        return {k: tf.gather(tf.concat([a[k], b[k]], 0), back) for k in a}

    def _tokenize_ascii(self, texts) -> dict:
        """Step 0: plain ASCII rows; offsets in bytes are offsets in characters."""
        if self.lower_case:
            texts = tf.strings.lower(texts)
        ids, starts, ends = self._wordpiece_ascii.tokenize_with_offsets(texts)
        flat = ids.flat_values
        first_piece = tf.cast(~tf.gather(self._is_suffix, flat), tf.int32)
        words_so_far = tf.cumsum(first_piece)
        before_row = tf.gather(tf.cumsum(first_piece, exclusive=True), tf.gather(ids.row_starts(), ids.value_rowids()))
        word_ids = words_so_far - before_row - 1
        return {"ids": ids, "word_ids": ids.with_flat_values(word_ids),
                "starts": tf.cast(starts, tf.int32), "ends": tf.cast(ends, tf.int32)}

    def _tokenize_general(self, texts) -> dict:
        """Steps 1-4 for any text."""
        chars = self._decode(texts)
        norm = self._normalize(chars)
        words = self._group_words(norm, tf.shape(texts, out_type=tf.int64)[0])
        return self._wordpieces(words, norm)

    def serving_signatures(self) -> dict:
        """Concrete functions to pass as `signatures=` to `tf.saved_model.save`."""
        spec = tf.TensorSpec([None], tf.string)
        single = tf.function(lambda text: self(text), input_signature=[spec])
        pair = tf.function(lambda text, pair: self(text, pair), input_signature=[spec, spec])
        return {"serving_default": single.get_concrete_function(),
                "pair": pair.get_concrete_function()}

    # ---- 1. code points and special tokens ----------------------------------------------

    def _decode(self, texts) -> dict:
        cps = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")   # [B, (C)]
        flat = cps.flat_values                                               # [C]
        row = cps.value_rowids()
        pos = tf.range(tf.size(flat, out_type=tf.int64)) - tf.gather(cps.row_starts(), row)
        start, covered = self._find_specials(flat, row)
        return {"cp": flat, "row": row, "pos": tf.cast(pos, tf.int32), "special_start": start,
                "covered": covered}

    def _find_specials(self, cp, row):
        """Where special tokens start in the raw text, and which code points they cover.

        Only positions holding a token's first character are checked, so the cost is tiny.
        """
        n = tf.shape(cp)[0]
        cand = tf.where(tf.reduce_any(cp[:, None] == self._special_firsts[None, :], axis=1))[:, 0]
        cand = tf.cast(cand, tf.int32)
        idx = cand[:, None] + tf.range(self._special_width)[None, :]                    # [K, width]
        padded_cp = tf.concat([cp, tf.fill([self._special_width], -1)], 0)
        padded_row = tf.concat([row, tf.fill([self._special_width], tf.constant(-1, row.dtype))], 0)
        window, window_row = tf.gather(padded_cp, idx), tf.gather(padded_row, idx)
        same_row = window_row == window_row[:, :1]
        ok = (window[:, None, :] == self._special_codes[None]) & same_row[:, None, :]
        ok = ok | (self._special_codes[None] == -2)                                      # past token end
        match = tf.reduce_all(ok, axis=2)                                                # [K, S]
        length = tf.reduce_max(tf.where(match, self._special_lengths[None, :], 0), axis=1)
        hit = length > 0
        starts_at, length = tf.boolean_mask(cand, hit), tf.boolean_mask(length, hit)
        covered_idx = tf.ragged.range(starts_at, starts_at + length).flat_values
        start = tf.scatter_nd(starts_at[:, None], tf.ones_like(starts_at, tf.bool), [n])
        covered = tf.scatter_nd(covered_idx[:, None], tf.ones_like(covered_idx, tf.bool), [n])
        return start, covered

    # ---- 2. normalisation ---------------------------------------------------------------

    def _normalize(self, chars: dict) -> dict:
        """Expand every code point to its normalised characters (0..k of them)."""
        cp = chars["cp"]
        page = tf.gather(self._page_index, tf.bitwise.right_shift(cp, 8))
        rows = tf.gather(self._pages, page * 256 + tf.bitwise.bitwise_and(cp, 255))
        rows = tf.where(chars["covered"], SPECIAL_ROW, rows)
        begin = tf.gather(self._row_splits, rows)
        lengths = tf.gather(self._row_splits, rows + 1) - begin
        src = tf.repeat(tf.range(tf.shape(cp)[0]), lengths)                 # [N] source code point
        first_out = tf.cumsum(lengths, exclusive=True)
        k = tf.range(tf.shape(src)[0]) - tf.gather(first_out, src)          # index inside the row
        at = tf.gather(begin, src) + k
        values = tf.gather(self._row_values, at)
        values = tf.where(values < 0, tf.gather(cp, src), values)
        return {"cp": values, "cls": tf.gather(self._row_classes, at), "row": tf.gather(chars["row"], src),
                "pos": tf.gather(chars["pos"], src),
                "special_start": tf.gather(chars["special_start"], src) & (k == 0)}

    # ---- 3. words -----------------------------------------------------------------------

    def _group_words(self, norm: dict, batch) -> dict:
        cls, row = norm["cls"], norm["row"]
        prev_cls = tf.concat([[WHITESPACE], cls[:-1]], 0)
        prev_row = tf.concat([[tf.constant(-1, row.dtype)], row[:-1]], 0)
        prev_cls = tf.where(prev_row == row, prev_cls, WHITESPACE)
        starts = ((cls == ISOLATED) | ((cls == WORD) & (prev_cls != WORD)) | norm["special_start"])
        keep = cls != WHITESPACE
        kept = {key: tf.boolean_mask(norm[key], keep) for key in ("cp", "row", "pos")}
        starts = tf.boolean_mask(starts, keep)
        word_of_char = tf.cumsum(tf.cast(starts, tf.int32)) - 1                      # [N'] -> word
        n_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        chars = tf.RaggedTensor.from_value_rowids(kept["cp"], word_of_char, nrows=n_words)
        first_char = tf.cast(chars.row_starts(), tf.int32)
        word_row = tf.gather(kept["row"], first_char)
        kept.update(word_of_char=word_of_char, chars=chars, first_char=first_char, word_row=word_row,
                    words_per_row=tf.math.bincount(tf.cast(word_row, tf.int32), minlength=tf.cast(batch, tf.int32),
                                                   maxlength=tf.cast(batch, tf.int32), dtype=tf.int32))
        return kept

    # ---- 4. WordPiece -------------------------------------------------------------------

    def _wordpieces(self, words: dict, norm: dict) -> dict:
        n_chars = tf.cast(words["chars"].row_lengths(), tf.int32)
        too_long = n_chars > self.max_input_chars_per_word
        strings = tf.strings.unicode_encode(words["chars"], "UTF-8")
        strings = tf.where(too_long, self.unk_token, strings)
        pieces, byte_start, byte_end = self._wordpiece.tokenize_with_offsets(strings)   # [W, (P)]
        ids = pieces.flat_values
        tok_word = tf.cast(pieces.value_rowids(), tf.int32)                                # [T]
        tok_row = tf.gather(words["word_row"], tok_word)
        row_first_word = tf.cumsum(words["words_per_row"], exclusive=True)
        word_ids = tok_word - tf.gather(row_first_word, tf.cast(tok_row, tf.int32))
        first, last = self._piece_chars(words, tok_word, byte_start.flat_values, byte_end.flat_values)
        last_char = words["first_char"] + n_chars - 1
        is_long = tf.gather(too_long, tok_word)
        first = tf.where(is_long, tf.gather(words["first_char"], tok_word), first)
        last = tf.where(is_long, tf.gather(last_char, tok_word), last)
        starts = tf.gather(words["pos"], first)
        ends = tf.gather(words["pos"], last) + 1
        batch = tf.shape(words["words_per_row"])[0]
        lengths = tf.math.bincount(tf.cast(tok_row, tf.int32), minlength=batch, maxlength=batch, dtype=tf.int64)

        def ragged(x):
            return tf.RaggedTensor.from_row_lengths(x, lengths)

        return {"ids": ragged(ids), "word_ids": ragged(word_ids), "starts": ragged(starts), "ends": ragged(ends)}

    @staticmethod
    def _piece_chars(words: dict, tok_word, byte_start, byte_end):
        """Map each piece's byte range inside its word to the (first, last) kept character."""
        cp = words["cp"]
        nbytes = 1 + sum(tf.cast(cp >= limit, tf.int32) for limit in _UTF8_LIMITS)
        char_byte = tf.cumsum(nbytes, exclusive=True)                 # global byte start of each char
        word_byte = tf.gather(char_byte, words["first_char"])
        piece_start = tf.gather(word_byte, tok_word) + tf.cast(byte_start, tf.int32)
        piece_end = tf.gather(word_byte, tok_word) + tf.cast(byte_end, tf.int32)
        first = tf.searchsorted(char_byte, piece_start, side="left", out_type=tf.int32)
        last = tf.searchsorted(char_byte, piece_end, side="left", out_type=tf.int32) - 1
        return first, last

    # ---- 5. packing ---------------------------------------------------------------------

    def _pack(self, a: dict, b: dict | None) -> dict:
        if self.truncation is not None:
            keep_a, keep_b = self._truncate(a["ids"].row_lengths(), None if b is None else b["ids"].row_lengths())
            a = _take(a, keep_a)
            b = None if b is None else _take(b, keep_b)
        batch = a["ids"].nrows()

        def concat(key, first, sep):
            """[first] A [sep] (B [sep]) for one field; special positions get first / sep."""
            def const(value):
                return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch, 1]), tf.constant(value, tf.int32)))
            parts = [const(first), tf.cast(a[key], tf.int32), const(sep)]
            if b is not None:
                parts += [tf.cast(b[key], tf.int32), const(sep)]
            return tf.concat(parts, axis=1)

        ids = concat("ids", self.cls_id, self.sep_id)
        type_ids = tf.zeros_like(ids)
        if b is not None:  # 1 from the first token of B to the end
            type_ids = tf.cast(tf.ragged.range(ids.row_lengths()) >= tf.expand_dims(a["ids"].row_lengths() + 2, 1),
                               tf.int32)
        if self.padding == "max_length":
            shape = [None, self.max_length]
        else:  # an empty batch still gets its [CLS] [SEP] columns: [0, 2], so [:, 0] stays in range
            shape = tf.stack([ids.nrows(), tf.maximum(ids.bounding_shape(axis=1), 2)])
        out = {"input_ids": ids.to_tensor(self.pad_id, shape=shape),
               "token_type_ids": type_ids.to_tensor(0, shape=shape),
               "attention_mask": tf.ones_like(ids).to_tensor(0, shape=shape)}
        if self.return_offsets:
            out["word_ids"] = concat("word_ids", -1, -1).to_tensor(-1, shape=shape)
            starts = concat("starts", 0, 0).to_tensor(0, shape=shape)
            ends = concat("ends", 0, 0).to_tensor(0, shape=shape)
            out["offsets"] = tf.stack([starts, ends], axis=-1)
        return out

    def _truncate(self, la, lb):
        """Tokens to keep per sequence so [CLS] A [SEP] (B [SEP]) fits max_length (HF rules)."""
        if lb is None:
            return tf.minimum(la, max(self.max_length - 2, 0)), None
        budget = tf.constant(max(self.max_length - 3, 0), la.dtype)
        total = la + lb
        if self.truncation in ("only_first", "only_second"):
            cut = tf.maximum(total - budget, 0)
            if self.truncation == "only_second":
                keep_b = tf.maximum(lb - cut, 0)
                return tf.minimum(la, budget - keep_b), keep_b
            keep_a = tf.maximum(la - cut, 0)
            return keep_a, tf.minimum(lb, budget - keep_a)
        swap = la > lb
        short, long_ = tf.minimum(la, lb), tf.maximum(la, lb)
        long_ = tf.where(short > budget, short, tf.maximum(short, budget - short))
        over = short + long_ > budget
        short = tf.where(over, budget // 2, short)
        long_ = tf.where(over, budget // 2 + budget % 2, long_)
        keep_a, keep_b = tf.where(swap, long_, short), tf.where(swap, short, long_)
        return tf.minimum(keep_a, la), tf.minimum(keep_b, lb)


def _take(seq: dict, keep) -> dict:
    """The first `keep[i]` tokens of row i of every ragged tensor in `seq`."""
    mask = tf.ragged.range(seq["ids"].row_lengths()) < tf.expand_dims(keep, 1)
    return {k: tf.ragged.boolean_mask(v, mask) for k, v in seq.items()}
