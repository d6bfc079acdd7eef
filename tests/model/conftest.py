"""Fixtures of the Keras model tests."""

import os

import pytest


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, minilm_path):
    """A small random transformers BertModel over MiniLM's real vocab and tokenizer files: the
    round-trip and parity tests need real tokens, not MiniLM's size."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(out)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(minilm_path, name)):
            shutil.copy(os.path.join(minilm_path, name), out)
    return str(out)
