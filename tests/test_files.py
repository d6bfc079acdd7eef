"""Files rewritten during training are replaced whole or not at all."""

import dataclasses

import pytest

from bertkit import load_model, save_model
from bertkit.files import write_atomically


class Killed(Exception):
    pass


def test_a_write_that_dies_leaves_the_old_file_and_no_side_file(tmp_path):
    path = tmp_path / "history.json"
    path.write_text("old, complete")

    def dies_halfway(tmp):
        with open(tmp, "w") as f:
            f.write("new, trunc")
        raise Killed

    with pytest.raises(Killed):
        write_atomically(str(path), dies_halfway)
    assert path.read_text() == "old, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]

    write_atomically(str(path), lambda tmp: open(tmp, "w").write("new, complete"))
    assert path.read_text() == "new, complete"


def test_save_model_killed_while_writing_weights_keeps_the_previous_model(tmp_path, tiny_config, minilm_path,
                                                                           monkeypatch):
    import numpy as np
    import safetensors.numpy

    from bertkit.model.encoder import BertEncoder

    config = dataclasses.replace(tiny_config, vocab_size=30522)  # MiniLM's vocab.txt
    out = tmp_path / "model"
    first = BertEncoder(config).build_weights()
    save_model(first, str(out), tokenizer_dir=minilm_path)
    before = (out / "model.safetensors").read_bytes()
    files = sorted(p.name for p in out.iterdir())
    assert {"config.json", "model.safetensors", "vocab.txt"} <= set(files)

    real = safetensors.numpy.save_file

    def dies_halfway(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        with open(path, "r+b") as f:
            f.truncate(len(before) // 2)
        raise Killed

    monkeypatch.setattr(safetensors.numpy, "save_file", dies_halfway)
    with pytest.raises(Killed):
        save_model(BertEncoder(config).build_weights(), str(out), tokenizer_dir=minilm_path)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == files  # no side files left
    np.testing.assert_array_equal(load_model(str(out)).embeddings.word_embeddings.numpy(),
                                  first.embeddings.word_embeddings.numpy())
