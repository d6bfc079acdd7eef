"""`BertTokenizer`: basic tokenization + WordPiece + BERT's [CLS] A [SEP] B [SEP] packing.

Token ids and character offsets equal HF `tokenizers` (`BertWordPieceTokenizer`, or the
`tokenizer.json` of a BERT checkpoint) for the same vocab and settings; the parity tests in
`tests/tokenizer/` check every line of the shared data sets.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
from pathlib import Path

from .basic import BasicTokenizer
from .encoding import Encoding, normalize_padding, normalize_truncation, truncated_lengths
from .errors import TokenizerError
from .vocab_file import check_vocab_casing, read_vocab_file, validate_vocab, vocab_is_cased
from .wordpiece import DEFAULT_MAX_INPUT_CHARS_PER_WORD, WordPiece

log = logging.getLogger(__name__)

SPECIAL_TOKEN_KEYS = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
CONFIG_FILE, VOCAB_FILE, HF_TOKENIZER_FILE = "tokenizer_config.json", "vocab.txt", "tokenizer.json"

# HF decoder clean-up, applied to each token after its leading space is added (so only
# single-token patterns such as " ." or " ," ever fire, exactly as in `tokenizers`).
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


class BertTokenizer:
    """WordPiece tokenizer for BERT.

    Args:
      vocab_file_or_list: path of a vocab.txt (one token per line, line number = id) or a list
        of tokens.
      lower_case: lower-case the input (uncased models).
      strip_accents: remove accents (NFD + drop non-spacing marks); None follows lower_case.
      tokenize_chinese_chars: make every CJK ideograph its own word.
      max_input_chars_per_word: longer words become [UNK] (100, as HF transformers; google-research
        used 200). Not read from or written to tokenizer files: transformers 5 uses 100 for any
        directory, whatever its files say.
      model_max_length: recorded in tokenizer_config.json; not applied unless max_length is given.
      check_casing: raise CasingError if the vocab's letters contradict lower_case.
      *_token: the special tokens; all must be in the vocab.
    """

    def __init__(self, vocab_file_or_list, lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True,
                 max_input_chars_per_word: int = DEFAULT_MAX_INPUT_CHARS_PER_WORD,
                 model_max_length: int = 512, check_casing: bool = True,
                 pad_token: str = "[PAD]", unk_token: str = "[UNK]", cls_token: str = "[CLS]",
                 sep_token: str = "[SEP]", mask_token: str = "[MASK]"):
        source = None
        if isinstance(vocab_file_or_list, (str, os.PathLike)):
            source = Path(vocab_file_or_list)
            tokens = read_vocab_file(source)
        else:
            tokens = list(vocab_file_or_list)
        self.special_tokens = {"pad_token": pad_token, "unk_token": unk_token, "cls_token": cls_token,
                               "sep_token": sep_token, "mask_token": mask_token}
        self.vocab = validate_vocab(tokens, self.special_tokens.values(), source)
        self.inv_vocab = list(tokens)
        self.lower_case = bool(lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.model_max_length = int(model_max_length)
        if check_casing:
            check_vocab_casing(tokens, self.lower_case, source)
        self.pad_id, self.unk_id = self.vocab[pad_token], self.vocab[unk_token]
        self.cls_id, self.sep_id, self.mask_id = self.vocab[cls_token], self.vocab[sep_token], self.vocab[mask_token]
        self.special_ids = {self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id}
        self.basic = BasicTokenizer(self.lower_case, strip_accents, self.tokenize_chinese_chars,
                                    never_split=self.special_tokens.values())
        self.wordpiece = WordPiece(self.vocab, unk_token, "##", self.max_input_chars_per_word)

    # ---- vocabulary ---------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.inv_vocab)

    def __len__(self) -> int:
        return len(self.inv_vocab)

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_id)
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, numbers.Integral):
            return self.inv_vocab[int(ids)]
        return [self.inv_vocab[int(i)] for i in ids]

    # ---- tokenization -------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of `text` (special tokens in the text are kept whole, none are added)."""
        return [self.inv_vocab[i] for i in self._pieces(text)[0]]

    def tokenize_with_offsets(self, text: str):
        """(pieces, offsets, word_ids); offsets are character (start, end) into `text`."""
        ids, offsets, word_ids = self._pieces(text)
        return [self.inv_vocab[i] for i in ids], offsets, word_ids

    def _pieces(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """(ids, offsets, word ids) of the pieces of one text; the hot loop of the Python path."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list[int] = []
        cached, segment, vocab = self.wordpiece.cache_get, self.wordpiece.tokenize, self.vocab
        for w, (word, start, end, aligns, special) in enumerate(self.basic.split_tuples(text)):
            if special:
                ids.append(vocab[word])
                offsets.append((start, end))
                word_ids.append(w)
                continue
            pieces = cached(word) or segment(word)
            if len(pieces) == 1:  # most words are one piece covering the whole word
                ids.append(pieces[0][0])
                offsets.append((start, end))
                word_ids.append(w)
                continue
            for tid, s, e in pieces:
                ids.append(tid)
                # aligns maps normalised characters back to the original ones (see basic.py).
                offsets.append((start + s, start + e) if aligns is None else (aligns[s], aligns[e - 1] + 1))
                word_ids.append(w)
        return ids, offsets, word_ids

    # ---- encoding -----------------------------------------------------------------------

    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation="longest_first", padding=False) -> Encoding:
        """Tokenize `text` (and `pair`) into an `Encoding`: [CLS] text [SEP] pair [SEP]."""
        strategy = normalize_truncation(truncation) if max_length is not None else None
        padding = normalize_padding(padding)
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        enc = self._encode(text, pair, add_special_tokens, max_length, strategy)
        if padding == "max_length":
            enc.pad(max_length, self.pad_id, self.inv_vocab[self.pad_id])
        return enc

    def encode_batch(self, texts, pairs=None, add_special_tokens: bool = True, max_length: int | None = None,
                     truncation="longest_first", padding=False) -> list[Encoding]:
        """`encode` for many inputs; padding='longest' pads to the longest in the batch."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; use encode for one text")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
        strategy = normalize_truncation(truncation) if max_length is not None else None
        padding = normalize_padding(padding)
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        pairs = [None] * len(texts) if pairs is None else pairs
        encs = [self._encode(t, p, add_special_tokens, max_length, strategy) for t, p in zip(texts, pairs)]
        if padding:
            length = max_length if padding == "max_length" else max((len(e) for e in encs), default=0)
            for e in encs:
                e.pad(length, self.pad_id, self.inv_vocab[self.pad_id])
        return encs

    def _encode(self, text, pair, add_special_tokens, max_length, strategy) -> Encoding:
        a = self._pieces(text)
        b = self._pieces(pair) if pair is not None else None
        if strategy is not None:
            n_special = (3 if b is not None else 2) if add_special_tokens else 0
            keep_a, keep_b = truncated_lengths(len(a[0]), None if b is None else len(b[0]),
                                               max_length - n_special, strategy)
            a = tuple(x[:keep_a] for x in a)
            b = None if b is None else tuple(x[:keep_b] for x in b)
        enc = Encoding()
        if add_special_tokens:
            self._append_special(enc, self.cls_id, 0)
        self._append_sequence(enc, a, 0)
        if add_special_tokens:
            self._append_special(enc, self.sep_id, 0)
        if b is not None:
            self._append_sequence(enc, b, 1)
            if add_special_tokens:
                self._append_special(enc, self.sep_id, 1)
        return enc

    def _append_special(self, enc: Encoding, tid: int, type_id: int) -> None:
        enc.ids.append(tid)
        enc.tokens.append(self.inv_vocab[tid])
        enc.offsets.append((0, 0))
        enc.type_ids.append(type_id)
        enc.attention_mask.append(1)
        enc.word_ids.append(None)
        enc.sequence_ids.append(None)
        enc.special_tokens_mask.append(1)

    def _append_sequence(self, enc: Encoding, seq, seq_id: int) -> None:
        ids, offsets, word_ids = seq
        n = len(ids)
        enc.ids += ids
        enc.tokens += [self.inv_vocab[i] for i in ids]
        enc.offsets += offsets
        enc.type_ids += [seq_id] * n
        enc.attention_mask += [1] * n
        enc.word_ids += word_ids
        enc.sequence_ids += [seq_id] * n
        enc.special_tokens_mask += [0] * n

    # ---- decoding -----------------------------------------------------------------------

    def decode(self, ids, skip_special_tokens: bool = True, clean_up_tokenization_spaces: bool = True) -> str:
        """Join pieces back into text like HF's WordPiece decoder (`##` pieces glue on)."""
        tokens = [self.inv_vocab[int(i)] for i in ids
                  if not (skip_special_tokens and int(i) in self.special_ids)]
        parts = []
        for k, tok in enumerate(tokens):
            if k:
                tok = tok[2:] if tok.startswith("##") else " " + tok
            if clean_up_tokenization_spaces:
                for dirty, clean in _CLEANUP:
                    tok = tok.replace(dirty, clean)
            parts.append(tok)
        return "".join(parts)

    # ---- persistence --------------------------------------------------------------------

    def config(self) -> dict:
        """HF-compatible tokenizer_config.json contents."""
        return {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "do_basic_tokenize": True,
            "never_split": None,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": True,
            **self.special_tokens,
        }

    def save(self, directory) -> None:
        """Write vocab.txt + tokenizer_config.json (+ special_tokens_map.json) into `directory`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.max_input_chars_per_word != DEFAULT_MAX_INPUT_CHARS_PER_WORD:
            log.warning("%s: max_input_chars_per_word %d is not saved (transformers and bertkit use %d for any "
                        "directory): loaded again, words of more than %d characters become [UNK]", d,
                        self.max_input_chars_per_word, DEFAULT_MAX_INPUT_CHARS_PER_WORD,
                        DEFAULT_MAX_INPUT_CHARS_PER_WORD)
        with open(d / VOCAB_FILE, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(t + "\n" for t in self.inv_vocab)
        with open(d / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(self.config(), f, indent=2, ensure_ascii=False)
            f.write("\n")
        with open(d / "special_tokens_map.json", "w", encoding="utf-8") as f:
            json.dump(self.special_tokens, f, indent=2)
            f.write("\n")

    def in_graph(self, **kwargs):
        """The equivalent in-graph tokenizer (`fast.FastBertTokenizer`), for tf.data / SavedModel."""
        from .fast import FastBertTokenizer

        return FastBertTokenizer.from_tokenizer(self, **kwargs)

    def __repr__(self) -> str:
        return (f"BertTokenizer(vocab_size={self.vocab_size}, lower_case={self.lower_case}, "
                f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars})")


# ---- loading ------------------------------------------------------------------------------

def load_tokenizer(path, revision: str | None = None, **overrides) -> BertTokenizer:
    """Load a tokenizer from a directory (vocab.txt + tokenizer_config.json), a vocab.txt path or a
    Hugging Face Hub name (`revision`: its branch, tag or commit; see `bertkit.hub`).

    Settings come from tokenizer_config.json (HF keys), else from tokenizer.json (HF fast
    tokenizers), else casing is inferred from the vocab, never assumed. `overrides` win.

    Returns: a `BertTokenizer` (ids, offsets and word ids equal HF `tokenizers`' BertWordPiece).
    Raises: FileNotFoundError without a vocab; bertkit.hub.HubError for an unknown Hub name.

    Example:
      >>> tok = load_tokenizer("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
      >>> tok.encode("BERT, from scratch.").tokens  # doctest: +SKIP
      ['[CLS]', 'bert', ',', 'from', 'scratch', '.', '[SEP]']
    """
    from ..hub import resolve_model_path

    path = Path(resolve_model_path(path, revision))
    directory = path if path.is_dir() else path.parent
    vocab_path = path if path.is_file() else directory / VOCAB_FILE
    kwargs: dict = {}
    hf_json = _read_json(directory / HF_TOKENIZER_FILE)
    if hf_json:
        kwargs.update(_settings_from_hf_json(hf_json))
    config = _read_json(directory / CONFIG_FILE)
    if config:
        kwargs.update(_settings_from_config(config))
    vocab = vocab_path
    if not vocab_path.is_file():
        if not (hf_json and "vocab" in hf_json.get("model", {})):
            raise FileNotFoundError(f"{path}: no vocab.txt (or tokenizer.json with a WordPiece vocab) found")
        vocab = [t for t, _ in sorted(hf_json["model"]["vocab"].items(), key=lambda kv: kv[1])]
    kwargs.update(overrides)
    if "lower_case" not in kwargs:
        tokens = read_vocab_file(vocab) if isinstance(vocab, Path) else vocab
        cased = vocab_is_cased(tokens)
        kwargs["lower_case"] = not cased
        log.info("%s: no casing setting found; the vocab looks %s", path, "cased" if cased else "uncased")
    return BertTokenizer(vocab, **kwargs)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise TokenizerError(f"invalid JSON: {e.msg}", path, e.lineno) from None


def _settings_from_config(config: dict) -> dict:
    out = {}
    if "do_lower_case" in config:
        out["lower_case"] = bool(config["do_lower_case"])
    # max_input_chars_per_word is not read from here (nor from tokenizer.json): transformers ignores
    # it in both files and uses 100, and the same directory must tokenize the same in both libraries.
    for key in ("strip_accents", "tokenize_chinese_chars"):
        if key in config:
            out[key] = config[key]
    if isinstance(config.get("model_max_length"), int) and config["model_max_length"] < 10**9:
        out["model_max_length"] = config["model_max_length"]
    for key in SPECIAL_TOKEN_KEYS:
        value = config.get(key)
        if isinstance(value, dict):  # HF AddedToken serialisation
            value = value.get("content")
        if isinstance(value, str):
            out[key] = value
    return out


def _settings_from_hf_json(data: dict) -> dict:
    out = {}
    norm = data.get("normalizer") or {}
    if norm.get("type") == "BertNormalizer":
        out["lower_case"] = bool(norm.get("lowercase", True))
        out["strip_accents"] = norm.get("strip_accents")
        out["tokenize_chinese_chars"] = bool(norm.get("handle_chinese_chars", True))
    model = data.get("model") or {}
    if model.get("type") == "WordPiece":
        # max_input_chars_per_word is not read: transformers 5 rebuilds WordPiece from the vocab with
        # its default of 100 whatever this file says, and a directory must tokenize as it does there.
        if model.get("unk_token"):
            out["unk_token"] = model["unk_token"]
    return out
