"""The frozen character classes still equal what HF `tokenizers` does, code point by code point."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_tables_equal_fresh_probe_of_hf():
    pytest.importorskip("tokenizers")
    from bertkit.tokenizer import unicode_tables
    from bertkit.tokenizer._gen_unicode_tables import probe_hf

    fresh = probe_hf()  # ~5-10 s: every code point through HF's normalizer and pre-tokenizer
    for name, value in fresh.items():
        stored = getattr(unicode_tables, name)
        assert (dict(stored) if isinstance(value, dict) else list(stored)) == value, (
            f"{name} changed: regenerate with `python -m bertkit.tokenizer._gen_unicode_tables`")


def test_known_reference_quirks():
    """A few of the recorded differences from Python's unicodedata, so they are visible here."""
    from bertkit.tokenizer.basic import CJK, PUNCTUATION, REMOVED, STRIPPED_MARKS, lower

    assert 0x2B820 not in CJK and 0x2B920 in CJK   # HF's CJK range starts at 0x2B920 (typo of 0x2B820)
    assert 0x2E43 not in PUNCTUATION               # Po since Unicode 9, not in HF's older tables
    assert 0x0378 not in REMOVED                   # unassigned (Cn) is kept, not treated as control
    assert 0x0898 not in STRIPPED_MARKS            # a Unicode 14 mark HF does not strip
    assert lower("\u1c89") == "\u1c8a"             # Rust lower-cases a Unicode 16 letter
