"""WordPiece tokenization for BERT: exact (HF-identical ids and offsets), in-graph, trainable.

    from bertkit.tokenizer import load_tokenizer
    tok = load_tokenizer("path/to/model_dir")        # vocab.txt + tokenizer_config.json
    enc = tok.encode("Hello world", "second segment", max_length=128, padding="max_length")
    enc.ids, enc.type_ids, enc.attention_mask, enc.offsets, enc.word_ids

    layer = tok.in_graph(max_length=128)              # same ids inside tf.data / SavedModels
    layer(tf.constant(["Hello world"]))["input_ids"]

Modules: `basic` (cleaning, accents, CJK, punctuation), `wordpiece` (greedy longest match),
`tokenizer` (BertTokenizer, load/save), `encoding` (Encoding, truncation), `vocab_file`
(reading / validating vocab.txt), `fast` (in-graph, tensorflow-text) with `charmap` (its
per-code-point tables), `vocab` (train a vocab.txt from a corpus), `errors`, and
`unicode_tables` (character classes probed from HF `tokenizers`; see `_gen_unicode_tables`).
"""

from .encoding import Encoding
from .errors import CasingError, CorpusEncodingError, TokenizerError, VocabError
from .tokenizer import BertTokenizer, load_tokenizer

__all__ = ["BertTokenizer", "Encoding", "load_tokenizer", "TokenizerError", "VocabError", "CasingError",
           "CorpusEncodingError", "FastBertTokenizer", "train_vocab"]


def __getattr__(name):
    # TensorFlow is imported only when the in-graph tokenizer is asked for; the Python
    # tokenizer and the vocab trainer stay light.
    if name == "FastBertTokenizer":
        from .fast import FastBertTokenizer

        return FastBertTokenizer
    if name == "train_vocab":
        from .vocab import train_vocab

        return train_vocab
    raise AttributeError(name)
