"""Fixtures for the tokenizer tests: the shared BERT vocabs and HF reference tokenizers."""

from __future__ import annotations

import pytest

from .shared_texts import SHARED_DATA

VOCABS = {"uncased": SHARED_DATA / "vocab" / "bert-base-uncased",
          "cased": SHARED_DATA / "vocab" / "bert-base-cased"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def hf_reference(vocab_file, lower_case: bool, max_input_chars_per_word: int = 100):
    """HF `tokenizers` BERT pipeline (what BertWordPieceTokenizer builds), with our word limit."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tok = Tokenizer(WordPiece.from_file(str(vocab_file), unk_token="[UNK]",
                                        max_input_chars_per_word=max_input_chars_per_word))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=lower_case)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    tok.add_special_tokens(SPECIALS)
    tok.decoder = decoders.WordPiece()
    return tok


def _need(path):
    if not path.exists():
        pytest.fail(f"{path} is not present (../shared/data)", pytrace=False)


@pytest.fixture(scope="session", params=sorted(VOCABS))
def case(request) -> str:
    _need(VOCABS[request.param])
    return request.param


@pytest.fixture(scope="session")
def ours(case):
    from bertkit.tokenizer import load_tokenizer

    return load_tokenizer(VOCABS[case])


@pytest.fixture(scope="session")
def reference(case):
    return hf_reference(VOCABS[case] / "vocab.txt", lower_case=case == "uncased")


@pytest.fixture(scope="session")
def uncased():
    from bertkit.tokenizer import load_tokenizer

    _need(VOCABS["uncased"])
    return load_tokenizer(VOCABS["uncased"])


@pytest.fixture(scope="session")
def uncased_reference():
    _need(VOCABS["uncased"])
    return hf_reference(VOCABS["uncased"] / "vocab.txt", lower_case=True)
