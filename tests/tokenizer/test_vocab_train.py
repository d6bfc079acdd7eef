"""Vocab training: layout, no [UNK] on corpus words, clear errors, CLI, and Gutenberg quality."""

from __future__ import annotations

import time

import pytest

from bertkit.tokenizer import BertTokenizer, CorpusEncodingError, train_vocab
from bertkit.tokenizer.vocab import VocabStats

from .shared_texts import SHARED_DATA

CORPUS = """The quick brown fox jumps over the lazy dog.
Tokenization splits unbelievable words into pieces; tokenizers tokenize tokens.
Café naïve résumé — “quotes” and 中文 characters, numbers 12345 and 3.14!
""" * 20
GUTENBERG = SHARED_DATA / "pretrain" / "gutenberg"


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf-8")
    return path


def test_layout_and_coverage(corpus):
    vocab = train_vocab([corpus], 300, num_unused=3, progress=False)
    assert vocab[:8] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "[unused2]"]
    assert len(vocab) == len(set(vocab)) <= 300
    tok = BertTokenizer(vocab)
    pieces = tok.tokenize(CORPUS)
    assert "[UNK]" not in pieces
    assert "the" in tok.vocab and "##s" in tok.vocab
    assert train_vocab([corpus], 300, num_unused=3, progress=False) == vocab  # deterministic


def test_cased_training_keeps_case(corpus):
    vocab = train_vocab([corpus], 300, lower_case=False, progress=False)
    assert "T" in vocab and "é" in vocab
    assert "[UNK]" not in BertTokenizer(vocab, lower_case=False).tokenize(CORPUS)


def test_non_utf8_reports_file_and_line(tmp_path, corpus):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"fine line\nanother\nBruneti\xe8re wrote\n")
    with pytest.raises(CorpusEncodingError, match=r"latin1.txt:3: byte 0xe8 at column 8") as err:
        train_vocab([corpus, bad], 300, progress=False)
    assert err.value.line == 3 and err.value.path.endswith("latin1.txt")
    vocab = train_vocab([corpus, bad], 300, errors="replace", progress=False)
    assert "[UNK]" not in BertTokenizer(vocab).tokenize("Brunetire wrote")


def test_bad_arguments(tmp_path, corpus):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no words"):
        train_vocab([empty], 100, progress=False)
    with pytest.raises(ValueError, match="too small"):
        train_vocab([corpus], 10, progress=False)
    with pytest.raises(FileNotFoundError):
        train_vocab([tmp_path / "missing.txt"], 100, progress=False)
    with pytest.raises(ValueError, match="errors"):
        train_vocab([corpus], 300, errors="ignore", progress=False)


def test_cli(tmp_path, corpus, capsys):
    from bertkit.cli import main
    from bertkit.tokenizer import load_tokenizer

    out = tmp_path / "vocab_out"
    assert main(["vocab", "--corpus", str(corpus), "--vocab-size", "250", "--out", str(out), "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    tok = load_tokenizer(out)
    assert tok.vocab_size <= 250 and tok.lower_case
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    assert main(["vocab", "--corpus", str(bad), "--vocab-size", "250", "--out", str(out), "--no-progress"]) == 2
    assert "bad.txt:2" in capsys.readouterr().err
    assert main(["tokenize", "--tokenizer", str(out), "The quick fox"]) == 0
    assert "[CLS]" in capsys.readouterr().out


@pytest.mark.slow
def test_gutenberg_held_out_quality():
    """Train on 12 books, tokenize the 13th: < 0.5% [UNK] and < 1.3 pieces per word."""
    if not GUTENBERG.exists():
        pytest.fail("../shared/data is not present", pytrace=False)
    books = sorted(GUTENBERG.glob("*.txt"))
    held_out = GUTENBERG / "austen-persuasion.txt"
    stats = VocabStats()
    start = time.perf_counter()
    vocab = train_vocab([b for b in books if b != held_out], 16000, errors="replace", progress=False, stats=stats)
    seconds = time.perf_counter() - start
    tok = BertTokenizer(vocab)
    text = held_out.read_text(encoding="utf-8")
    words = tok.basic.tokenize(text)
    pieces = tok.tokenize(text)
    unk_rate = pieces.count("[UNK]") / len(pieces)
    print(f"trained {len(vocab)} tokens in {seconds:.1f} s; held-out: {unk_rate:.4%} [UNK], "
          f"{len(pieces) / len(words):.3f} pieces/word, {len(pieces) / len(text.split()):.3f} per space-word")
    assert unk_rate < 0.005
    assert len(pieces) / len(words) < 1.3
    # the time is printed above, never asserted: a slower CPU must not fail the suite
