"""Export layout (TF Serving), metadata, the TF Hub preprocessor API, options and errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from bertkit.export import build_module, export_model, read_metadata, resolve_export, version_numbers

from .conftest import TASK_OPTIONS, make_tiny_model


def test_tf_serving_layout_and_metadata(exports):
    for name, path in exports.items():
        assert os.path.basename(path) == "1", name
        assert os.path.exists(os.path.join(path, "saved_model.pb"))
        assert resolve_export(os.path.dirname(path)) == path
        assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".tmp")]
    meta = read_metadata(exports["classify"])
    assert meta["kind"] == meta["task"] == "classify" and meta["labels"] == ["neg", "pos"]
    assert meta["options"]["max_length"] == TASK_OPTIONS["classify"]["max_length"]
    assert meta["signatures"]["serving_default"]["inputs"] == ["text"]
    assert {"probabilities", "label"} <= set(meta["signatures"]["serving_default"]["outputs"])
    assert meta["signatures"]["token_ids"]["inputs"] == ["attention_mask", "input_ids", "token_type_ids"]
    assert read_metadata(exports["qa"])["signatures"]["serving_default"]["inputs"] == ["context", "question"]
    assert read_metadata(exports["ner"])["options"]["stride"] == (24 - 2) // 2
    assert json.dumps(read_metadata(exports["encoder"]))  # plain JSON, no tracking wrappers


def test_versions(tmp_path):
    for v in ("1", "3", "10"):
        os.makedirs(tmp_path / v)
        (tmp_path / v / "saved_model.pb").write_bytes(b"")
    os.makedirs(tmp_path / "7")  # no saved_model.pb: not a version
    assert version_numbers(str(tmp_path)) == [1, 3, 10]
    assert resolve_export(str(tmp_path)) == str(tmp_path / "10")
    assert resolve_export(str(tmp_path / "3")) == str(tmp_path / "3")
    assert resolve_export(str(tmp_path / "7")) is None


def test_existing_version_is_not_overwritten(tiny_models, exports):
    with pytest.raises(FileExistsError):
        export_model(tiny_models["classify"], os.path.dirname(exports["classify"]), version=1)


def test_kind_must_match_the_model(tiny_models):
    with pytest.raises(ValueError, match="classify model, not a ner model"):
        build_module(tiny_models["classify"], "ner")
    with pytest.raises(ValueError, match="unknown export kind"):
        build_module(tiny_models["classify"], "translate")


def test_pair_classifier_serves_pairs_by_default(tiny_models, tmp_path):
    assert build_module(tiny_models["classify"]).pair is False
    assert build_module(tiny_models["classify"], pair=True).pair is True
    pair_dir = make_tiny_model("classify", tmp_path / "mrpc", ["0", "1"],
                               {"max_length": 32, "text_pair_column": "#2 String"})
    assert build_module(pair_dir).pair is True


def test_max_length_beyond_positions_is_refused(tiny_models):
    with pytest.raises(ValueError, match="max_position_embeddings"):
        build_module(tiny_models["classify"], max_length=1024)


def test_tf_hub_preprocessor_api(exports, tiny_models):
    from bertkit.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_models["classify"])
    preprocess = tf.saved_model.load(exports["preprocessor"])
    texts = ["Hello, world! [MASK]", "an unaffable naïve café"]
    root = preprocess(tf.constant(texts))
    assert root["input_word_ids"].shape == (2, 48)
    assert root["input_word_ids"].numpy().tolist() == [e.ids for e in tokenizer.encode_batch(
        texts, max_length=48, padding="max_length")]
    tokens = preprocess.tokenize(tf.constant(texts))
    assert tokens.shape.rank == 3  # [batch, (words), (pieces)]
    assert tokens.merge_dims(1, 2).to_list() == [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t)) for t in texts]
    packed = preprocess.bert_pack_inputs([tokens, tokens], seq_length=tf.constant(12))
    ids, types, mask = (packed[k].numpy() for k in ("input_word_ids", "input_type_ids", "input_mask"))
    # 5 + 5 pieces, budget 12 - 3: round-robin keeps 5 + 4
    assert ids.shape == (2, 12) and mask.sum() == 24 and types[0].tolist() == [0] * 7 + [1] * 5
    assert ids[0, 0] == tokenizer.cls_id and ids[0, 6] == ids[0, 11] == tokenizer.sep_id
    specials = {k: int(v) for k, v in preprocess.tokenize.get_special_tokens_dict().items()}
    assert specials["padding_id"] == tokenizer.pad_id and specials["vocab_size"] == tokenizer.vocab_size
    single = preprocess.bert_pack_inputs([tokens.merge_dims(1, 2)])
    assert np.array_equal(single["input_word_ids"].numpy(), root["input_word_ids"].numpy())


@pytest.mark.slow
def test_qa_squad2_null_answers_match_python(tmp_path, real_inputs):
    """SQuAD 2.0 models: the null answer wins when [CLS] beats the best span by the threshold."""
    from .test_parity import _python_qa

    questions, contexts = real_inputs["questions"][:12], real_inputs["contexts"][:12]
    for threshold in (-2.0, 2.0):
        options = {**TASK_OPTIONS["qa"], "version_2": True, "null_score_diff_threshold": threshold}
        model_dir = make_tiny_model("qa", tmp_path / f"qa{threshold}", None, options, seed=3)
        module = build_module(model_dir)  # keep a reference: tf.function methods hold `self` weakly
        got = module.predict(tf.constant(questions), tf.constant(contexts))
        want, _ = _python_qa(model_dir, questions, contexts)
        for i in range(len(questions)):
            w = want[str(i)]
            assert (got["answer"][i].numpy().decode(), int(got["start"][i]), int(got["end"][i])) == \
                (w["answer"], w["start"], w["end"])
            assert float(got["probability"][i]) == pytest.approx(w["probability"], abs=1e-5)
