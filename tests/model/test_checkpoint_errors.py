"""The strict loader: every mismatch is named."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from bertkit import load_model, load_pretrained, save_model
from bertkit.convert.checkpoint import CheckpointError
from bertkit.model.encoder import BertEncoder


@pytest.fixture
def saved_tiny(tiny_config, tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    save_model(BertEncoder(tiny_config).build_weights(), str(tmp_path), tokenizer_dir=str(tmp_path))
    return tmp_path


def test_shape_mismatch_names_the_variable(saved_tiny):
    raw = json.loads((saved_tiny / "config.json").read_text())
    raw["intermediate_size"] = 40
    (saved_tiny / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight.*\(40, 32\).*\(32, 37\)|"
                                              r"encoder\.layer\.0\.intermediate\.dense\.weight.*\(32, 37\).*\(32, 40\)"):
        load_pretrained(str(saved_tiny))


def test_missing_and_unused_tensors_are_named(saved_tiny):
    """Half a pooler is a broken checkpoint (a whole missing pooler is allowed: test_optional_parts)."""
    tensors = load_file(str(saved_tiny / "model.safetensors"))
    tensors.pop("pooler.dense.bias")
    tensors["encoder.layer.9.extra.weight"] = np.zeros(3, np.float32)
    save_file(tensors, str(saved_tiny / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as err:
        load_pretrained(str(saved_tiny))
    assert "pooler.dense.bias" in str(err.value) and "encoder.layer.9.extra.weight" in str(err.value)


def test_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 10, "hidden_size": 8,
                                                      "num_hidden_layers": 1, "num_attention_heads": 2}))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_pretrained(str(tmp_path))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_pretrained(str(tmp_path))


def test_task_models_round_trip_with_labels(tiny_config, saved_tiny, tmp_path):
    model = load_model(str(saved_tiny), task="classify", labels=["neg", "pos", "neutral"])
    out = tmp_path / "clf"
    save_model(model, str(out), tokenizer_dir=str(saved_tiny))
    again = load_model(str(out))
    assert again.labels == ["neg", "pos", "neutral"]
    ids = {"input_ids": np.array([[2, 7, 8, 3]], np.int32)}
    np.testing.assert_array_equal(model(ids)["logits"].numpy(), again(ids)["logits"].numpy())
    with pytest.raises(CheckpointError, match="labels"):
        load_model(str(out), task="classify", labels=["a", "b", "c"])


def test_convert_cli_google_to_bertkit_dir(tiny_config, tmp_path):
    import torch
    import transformers

    from bertkit.cli import main as cli
    from bertkit.convert.google import hf_to_google_names, write_google_checkpoint
    from bertkit.convert.checkpoint import collect_hf_tensors
    from bertkit.model.models import build_task_model

    model = build_task_model("pretraining", tiny_config)
    tensors = {k[len("bert."):] if k.startswith("bert.") else k: v
               for k, v in collect_hf_tensors(model, tiny_config, "pretraining").items()}
    google = tmp_path / "google"
    google.mkdir()
    write_google_checkpoint(hf_to_google_names(tensors, tiny_config), str(google / "bert_model.ckpt"))
    (google / "bert_config.json").write_text(json.dumps(tiny_config.to_dict()))
    (google / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                                                [f"w{i}" for i in range(94)]))
    out = tmp_path / "converted"
    assert cli(["convert", str(google), str(out)]) == 0
    assert json.loads((out / "tokenizer_config.json").read_text())["do_lower_case"] is True
    hf = transformers.BertForPreTraining.from_pretrained(str(out)).eval()
    ids = np.array([[2, 10, 11, 12, 3]], np.int32)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids, dtype=torch.long))
    ours = model({"input_ids": ids, "masked_lm_positions": np.array([[1, 2]], np.int32)})
    np.testing.assert_allclose(ours["nsp_logits"].numpy(), ref.seq_relationship_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours["mlm_logits"].numpy(), ref.prediction_logits.numpy()[:, 1:3], atol=1e-4)
