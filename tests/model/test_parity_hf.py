"""Parity with HF transformers (PyTorch, eval mode) on the real MiniLM-L6-H384 checkpoint."""

import json
import re
import shutil

import numpy as np
import pytest

from bertkit import load_model, load_pretrained, save_model
from bertkit.convert.google import write_google_checkpoint
from tests.model.reference import hf_batch, max_diff_at_real_tokens, torch_inputs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOL = 1e-4


@pytest.fixture(scope="module")
def batch(minilm_path):
    return hf_batch(minilm_path)


@pytest.fixture(scope="module")
def hf_outputs(minilm_path, batch):
    model = transformers.BertModel.from_pretrained(minilm_path).eval()
    with torch.no_grad():
        out = model(**torch_inputs(batch), output_hidden_states=True)
    return {"sequence_output": out.last_hidden_state.numpy(), "pooled_output": out.pooler_output.numpy(),
            "hidden_states": [h.numpy() for h in out.hidden_states]}


@pytest.fixture(scope="module")
def encoder(minilm_path):
    return load_pretrained(minilm_path)


def test_batch_is_real_and_padded(batch):
    assert batch["input_ids"].shape[0] == 16
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max()  # mixed lengths, so padding is exercised
    assert batch["token_type_ids"][10:].max() == 1  # sentence pairs carry segment B


def test_encoder_matches_hf(encoder, batch, hf_outputs):
    out = encoder(batch, output_hidden_states=True)
    mask = batch["attention_mask"]
    assert max_diff_at_real_tokens(out["sequence_output"], hf_outputs["sequence_output"], mask) <= TOL
    assert np.abs(out["pooled_output"].numpy() - hf_outputs["pooled_output"]).max() <= TOL
    assert len(out["hidden_states"]) == 7
    for ours, theirs in zip(out["hidden_states"], hf_outputs["hidden_states"]):
        assert max_diff_at_real_tokens(ours, theirs, mask) <= TOL


def test_encoder_matches_hf_under_xla(encoder, batch, hf_outputs):
    import tensorflow as tf

    fn = tf.function(lambda x: encoder(x), jit_compile=True)
    out = fn({k: tf.constant(v) for k, v in batch.items()})
    assert max_diff_at_real_tokens(out["sequence_output"], hf_outputs["sequence_output"],
                                   batch["attention_mask"]) <= TOL


@pytest.fixture(scope="module")
def hf_pretraining_dir(minilm_path, tmp_path_factory):
    """A BertForPreTraining with MiniLM's encoder and seeded random heads, saved by transformers."""
    torch.manual_seed(0)
    config = transformers.BertConfig.from_pretrained(minilm_path)
    model = transformers.BertForPreTraining(config).eval()
    model.bert.load_state_dict(transformers.BertModel.from_pretrained(minilm_path).state_dict())
    with torch.no_grad():  # random, non-zero head biases so that they are really tested
        model.cls.predictions.bias.normal_(0, 0.5)
        model.cls.seq_relationship.bias.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("hf_pretraining")
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(f"{minilm_path}/vocab.txt", out / "vocab.txt")
    return out, model


def masked_positions(batch, per_row=5, seed=0):
    rng = np.random.default_rng(seed)
    lengths = batch["attention_mask"].sum(1)
    return np.stack([np.sort(rng.choice(np.arange(1, n - 1), per_row, replace=False))
                     for n in lengths]).astype(np.int32)


def hf_head_outputs(model, batch, positions):
    with torch.no_grad():
        out = model(**torch_inputs(batch))
    mlm = np.take_along_axis(out.prediction_logits.numpy(), positions[:, :, None], axis=1)
    return mlm, out.seq_relationship_logits.numpy()


def test_pretraining_heads_match_hf(hf_pretraining_dir, batch):
    path, hf_model = hf_pretraining_dir
    positions = masked_positions(batch)
    ref_mlm, ref_nsp = hf_head_outputs(hf_model, batch, positions)
    ours = load_model(str(path))
    out = ours({**batch, "masked_lm_positions": positions})
    assert out["mlm_logits"].shape == ref_mlm.shape
    assert np.abs(out["mlm_logits"].numpy() - ref_mlm).max() <= TOL * 10  # logits are ~30x larger
    assert np.abs(out["nsp_logits"].numpy() - ref_nsp).max() <= TOL


def google_name(hf_name: str) -> tuple[str, bool]:
    """HF name -> google-research/bert variable name, and whether the array is transposed.

    Written independently of bertkit's name map, from google-research/bert's variable scopes."""
    special = {"cls.predictions.bias": "cls/predictions/output_bias",
               "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
               "cls.seq_relationship.bias": "cls/seq_relationship/output_bias"}
    if hf_name in special:
        return special[hf_name], False
    name = hf_name if hf_name.startswith("cls.") else "bert." + hf_name
    name = re.sub(r"layer\.(\d+)", r"layer_\1", name).replace(".", "/")
    if "LayerNorm" in name:
        return name.replace("/weight", "/gamma").replace("/bias", "/beta"), False
    if "_embeddings/weight" in name:
        return name[: -len("/weight")], False
    return name.replace("/weight", "/kernel"), name.endswith("/weight")


def test_google_checkpoint_loads_and_matches(hf_pretraining_dir, batch, tmp_path, minilm_path):
    path, hf_model = hf_pretraining_dir
    state = {k[len("bert."):] if k.startswith("bert.") else k: v.numpy()
             for k, v in hf_model.state_dict().items()}
    tensors = {}
    for name, value in state.items():
        if name in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "embeddings.position_ids"):
            continue
        gname, transpose = google_name(name)
        tensors[gname] = value.T.copy() if transpose else value
        tensors[gname + "/adam_m"] = np.zeros_like(tensors[gname])  # optimizer slots: skipped on purpose
    tensors["global_step"] = np.array(1000, np.int64)
    write_google_checkpoint(tensors, str(tmp_path / "bert_model.ckpt"))
    hf_config = json.loads((path / "config.json").read_text())
    google_config = {k: hf_config[k] for k in (
        "attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size", "initializer_range",
        "intermediate_size", "max_position_embeddings", "num_attention_heads", "num_hidden_layers",
        "type_vocab_size", "vocab_size")}
    (tmp_path / "bert_config.json").write_text(json.dumps(google_config))
    shutil.copy(f"{minilm_path}/vocab.txt", tmp_path / "vocab.txt")

    positions = masked_positions(batch, seed=1)
    ref_mlm, ref_nsp = hf_head_outputs(hf_model, batch, positions)
    out = load_model(str(tmp_path))({**batch, "masked_lm_positions": positions})
    assert np.abs(out["mlm_logits"].numpy() - ref_mlm).max() <= TOL * 10
    assert np.abs(out["nsp_logits"].numpy() - ref_nsp).max() <= TOL
    pooled = load_pretrained(str(tmp_path))(batch)["pooled_output"].numpy()
    with torch.no_grad():
        ref_pooled = hf_model.bert(**torch_inputs(batch)).pooler_output.numpy()
    assert np.abs(pooled - ref_pooled).max() <= TOL


def test_bertkit_dir_loads_in_transformers(encoder, batch, tmp_path, minilm_path):
    save_model(encoder, str(tmp_path), tokenizer_dir=minilm_path)
    hf = transformers.BertModel.from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        ref = hf(**torch_inputs(batch))
    out = encoder(batch)
    assert max_diff_at_real_tokens(out["sequence_output"], ref.last_hidden_state.numpy(),
                                   batch["attention_mask"]) <= TOL
    assert (tmp_path / "vocab.txt").exists()


def test_pretraining_dir_loads_in_transformers(hf_pretraining_dir, batch, tmp_path):
    path, hf_model = hf_pretraining_dir
    save_model(load_model(str(path)), str(tmp_path), tokenizer_dir=str(path))
    reloaded = transformers.BertForPreTraining.from_pretrained(str(tmp_path)).eval()
    positions = masked_positions(batch, seed=2)
    a_mlm, a_nsp = hf_head_outputs(hf_model, batch, positions)
    b_mlm, b_nsp = hf_head_outputs(reloaded, batch, positions)
    assert np.abs(a_mlm - b_mlm).max() == 0 and np.abs(a_nsp - b_nsp).max() == 0


def test_hf_to_bertkit_to_hf_is_byte_identical(minilm_path, encoder, tmp_path):
    from safetensors.numpy import load_file

    save_model(encoder, str(tmp_path), tokenizer_dir=minilm_path)
    source = load_file(f"{minilm_path}/model.safetensors")
    written = load_file(str(tmp_path / "model.safetensors"))
    source.pop("embeddings.position_ids")  # a constant buffer, skipped on purpose
    assert sorted(source) == sorted(written)
    for name, value in source.items():
        assert written[name].dtype == value.dtype and written[name].tobytes() == value.tobytes(), name
