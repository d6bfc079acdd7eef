"""The tokenizer of the fine-tuning data tests: bertkit's own, with bert-base-uncased's vocab.

A helper module rather than a conftest.py so that it does not collide with other fixtures under
tests/data; test modules import the `tokenizer` fixture from it.
"""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VOCAB = SHARED_DATA / "vocab" / "bert-base-uncased" / "vocab.txt"


@pytest.fixture(scope="session")
def tokenizer():
    if not VOCAB.exists():
        pytest.fail("../shared/data/vocab is not present", pytrace=False)
    from bertkit.tokenizer import load_tokenizer

    return load_tokenizer(str(VOCAB))
