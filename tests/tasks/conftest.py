"""Fixtures of the task tests: a tiny random BERT with MiniLM's vocab, and small real data files."""

import json

import pytest

from bertkit import save_model
from bertkit.config import BertConfig
from bertkit.model.encoder import BertEncoder


@pytest.fixture(scope="package")
def tiny_dir(tmp_path_factory, minilm_path):
    out = tmp_path_factory.mktemp("tiny")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64)
    save_model(BertEncoder(config).build_weights(), str(out), tokenizer_dir=minilm_path)
    return out


@pytest.fixture(scope="package")
def data(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("data")
    lines = (shared_data / "sst2" / "train.tsv").read_text().splitlines()
    (d / "train.tsv").write_text("\n".join(lines[:161]) + "\n")
    (d / "dev.tsv").write_text("\n".join([lines[0]] + lines[161:201]) + "\n")
    stsb = (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8").splitlines()
    (d / "stsb.csv").write_text("\n".join(stsb[:120]) + "\n", encoding="utf-8")
    emotions = (shared_data / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines()
    (d / "goemotions.tsv").write_text("\n".join(emotions[:120]) + "\n", encoding="utf-8")
    csqa = (shared_data / "commonsenseqa" / "train_rand_split.jsonl").read_text(encoding="utf-8").splitlines()
    (d / "csqa.jsonl").write_text("\n".join(csqa[:96]) + "\n", encoding="utf-8")
    (d / "csqa_dev.jsonl").write_text("\n".join(csqa[96:136]) + "\n", encoding="utf-8")
    conll = (shared_data / "conll2003" / "eng.testa").read_text().split("\n\n")
    (d / "train.conll").write_text("\n\n".join(conll[:80]) + "\n")
    (d / "dev.conll").write_text("\n\n".join(conll[80:110]) + "\n")
    squad = json.loads((shared_data / "squad" / "dev-v1.1.articles00-37.json").read_text())
    article = squad["data"][0]
    article["paragraphs"] = article["paragraphs"][:4]
    (d / "squad.json").write_text(json.dumps({"data": [article], "version": "1.1"}))
    return d
