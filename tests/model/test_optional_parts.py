"""A checkpoint without the parts a task does not need loads for that task: transformers'
BertForMaskedLM saves no pooler, and NER / QA (which never read it) and classification (which gets
a fresh one, as in transformers) start from it, saying so on stderr."""

import logging

import numpy as np
import pytest

from bertkit import load_model
from bertkit.convert.checkpoint import CheckpointError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(config).eval()
    out = tmp_path_factory.mktemp("mlm")
    model.save_pretrained(str(out))
    from safetensors.numpy import load_file

    assert not any(k.startswith("bert.pooler") for k in load_file(str(out / "model.safetensors")))
    return out, model


@pytest.mark.parametrize("task", ["ner", "qa", "classify"])
def test_a_masked_lm_checkpoint_starts_every_task(mlm_dir, task, caplog):
    path, reference = mlm_dir
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        model = load_model(str(path), task=task, labels=["O", "B-X", "I-X"] if task != "qa" else None)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "pooler" in said
    assert ("initialised fresh" in said) == (task == "classify")
    ids = np.array([[2, 17, 45, 9, 3, 0]], np.int32)
    batch = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": (ids > 0).astype(np.int32)}
    with torch.no_grad():
        expected = reference.bert(**{k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()})
    ours = model.encoder(batch)["sequence_output"].numpy()
    np.testing.assert_allclose(ours, expected.last_hidden_state.numpy(), atol=1e-5)


def test_half_a_pooler_is_still_an_error(mlm_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    path, _ = mlm_dir
    tensors = load_file(str(path / "model.safetensors"))
    tensors["bert.pooler.dense.weight"] = np.zeros((32, 32), np.float32)
    (tmp_path / "half").mkdir()
    save_file(tensors, str(tmp_path / "half" / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "half" / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(CheckpointError, match="pooler.dense.bias"):
        load_model(str(tmp_path / "half"), task="ner", labels=["O"])
