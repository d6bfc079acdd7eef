import json

import pytest

from bertkit.config import PRESETS, BertConfig, resolve_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_follow_the_small_bert_rules(name):
    c = BertConfig.from_preset(name)
    layers, hidden = PRESETS[name]
    assert (c.num_hidden_layers, c.hidden_size) == (layers, hidden)
    assert c.num_attention_heads == hidden // 64 and c.intermediate_size == 4 * hidden


def test_base_preset_is_bert_base():
    c = BertConfig.from_preset("base")
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (12, 768, 12, 3072)


def test_json_round_trip(tmp_path):
    c = BertConfig.from_preset("mini", hidden_act="gelu_new", vocab_size=1234)
    c.save(tmp_path / "c.json")
    assert BertConfig.from_json_file(tmp_path / "c.json") == c
    assert BertConfig.from_dict(json.loads(c.to_json())) == c


def test_reads_hf_and_google_configs(tmp_path, minilm_path):
    c = resolve_config(minilm_path)
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (384, 6, 12, 1536)
    google = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
              "hidden_size": 128, "initializer_range": 0.02, "intermediate_size": 512,
              "max_position_embeddings": 512, "num_attention_heads": 2, "num_hidden_layers": 2,
              "type_vocab_size": 2, "vocab_size": 30522}
    (tmp_path / "bert_config.json").write_text(json.dumps(google))
    c = resolve_config(str(tmp_path))
    assert c.hidden_size == 128 and c.num_attention_heads == 2
    assert BertConfig.from_dict({**google, "hidden_act": "gelu_pytorch_tanh"}).hidden_act == "gelu_new"


@pytest.mark.parametrize("field,value,match", [
    ("num_attention_heads", 5, "hidden_size"),
    ("hidden_size", 0, "hidden_size"),
    ("num_hidden_layers", -1, "num_hidden_layers"),
    ("vocab_size", 1.5, "vocab_size"),
    ("hidden_act", "swish3", "hidden_act"),
    ("hidden_dropout_prob", 1.5, "hidden_dropout_prob"),
])
def test_invalid_values_name_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        BertConfig.from_preset("tiny", **{field: value})


def test_unknown_preset_and_missing_fields():
    with pytest.raises(ValueError, match="unknown preset"):
        BertConfig.from_preset("huge")
    with pytest.raises(ValueError, match="missing required"):
        BertConfig.from_dict({"hidden_size": 128})
    with pytest.raises(ValueError, match="neither a preset"):
        resolve_config("no-such-thing")


def test_override_config_takes_only_rates_that_shape_no_weight():
    from bertkit.pretrained import override_config

    c = BertConfig.from_preset("tiny")
    assert override_config(c, None) is c
    assert override_config(c, {"hidden_dropout_prob": None}) is c
    changed = override_config(c, {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.2})
    assert (changed.hidden_dropout_prob, changed.attention_probs_dropout_prob) == (0.0, 0.2)
    assert changed.hidden_size == c.hidden_size
    with pytest.raises(ValueError, match=r"cannot override \['hidden_size'\]"):
        override_config(c, {"hidden_size": 64})
    with pytest.raises(ValueError, match="attention_probs_dropout_prob must be in"):
        override_config(c, {"attention_probs_dropout_prob": -0.1})
