"""Pretraining TFRecords (bertkit.data.records): static round trip, dynamic masking in tf.data, CLI."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from bertkit.data.corpus import CorpusError
from bertkit.data.masking import DynamicMasking, MaskingSpec
from bertkit.data.pretraining import PretrainingDataConfig, create_pretraining_instances
from bertkit.data.records import (METADATA_FILE, load_pretraining_dataset, masking_spec_from_dir, read_metadata,
                                  write_pretraining_data)

SEQ, PRED = 64, 10


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    from bertkit.tokenizer import load_tokenizer

    return load_tokenizer(str(shared_data / "vocab" / "bert-base-uncased"))


@pytest.fixture(scope="module")
def corpus(shared_data):
    pre = shared_data / "pretrain"
    return [str(pre / "bert_sample_text.txt"), str(pre / "gutenberg" / "blake-poems.txt"),
            str(pre / "gutenberg" / "shakespeare-macbeth.txt")]


def _config(**overrides):
    return PretrainingDataConfig(max_length=SEQ, max_predictions=PRED, **overrides)


@pytest.fixture(scope="module")
def dynamic_dir(tmp_path_factory, corpus, tokenizer):
    out = tmp_path_factory.mktemp("dynamic")
    write_pretraining_data(corpus, tokenizer, out, _config(static_mask=False), num_shards=3, seed=5)
    return out


def _as_numpy(ds):
    return [({k: v.numpy() for k, v in f.items()}, {k: v.numpy() for k, v in l.items()}) for f, l in ds]


def test_static_records_round_trip_exactly(tmp_path, corpus, tokenizer):
    config = _config(dupe_factor=2, whole_word_mask=True)
    metadata = write_pretraining_data(corpus, tokenizer, tmp_path, config, num_shards=3, seed=11)
    expected = list(create_pretraining_instances(corpus, tokenizer, config, seed=11))
    assert metadata["num_instances"] == len(expected) > 500
    assert sum(s["instances"] for s in metadata["shards"]) == len(expected)

    # Unshuffled, the interleave over 3 shards written round-robin restores the original order.
    batches = _as_numpy(load_pretraining_dataset(tmp_path, 16, shuffle=False, drop_remainder=False))
    features = {k: np.concatenate([f[k] for f, _ in batches]) for k in batches[0][0]}
    labels = {k: np.concatenate([lab[k] for _, lab in batches]) for k in batches[0][1]}
    assert len(features["input_ids"]) == len(expected)
    for name, array in {**features, **labels}.items():
        assert array.dtype == (np.float32 if name == "masked_lm_weights" else np.int32), name
    for i, inst in enumerate(expected):
        n, m = len(inst.input_ids), len(inst.masked_lm_positions)
        assert features["input_ids"][i].tolist() == inst.input_ids + [0] * (SEQ - n)
        assert features["token_type_ids"][i].tolist() == inst.token_type_ids + [0] * (SEQ - n)
        assert features["attention_mask"][i].tolist() == [1] * n + [0] * (SEQ - n)
        assert features["masked_lm_positions"][i].tolist() == inst.masked_lm_positions + [0] * (PRED - m)
        assert labels["masked_lm_ids"][i].tolist() == inst.masked_lm_ids + [0] * (PRED - m)
        assert labels["masked_lm_weights"][i].tolist() == [1.0] * m + [0.0] * (PRED - m)
        assert labels["next_sentence_labels"][i] == int(inst.is_random_next)

    assert read_metadata(tmp_path) == json.loads((tmp_path / METADATA_FILE).read_text())
    assert metadata["max_length"] == SEQ and metadata["max_predictions"] == PRED
    assert metadata["masking"] == "static" and metadata["whole_word_mask"] and metadata["dupe_factor"] == 2
    assert metadata["vocab_size"] == tokenizer.vocab_size == 30522
    assert (tmp_path / "vocab.txt").read_text().split("\n")[:-1] == tokenizer.inv_vocab
    assert metadata["counts"]["is_next"] == sum(not i.is_random_next for i in expected)


def test_dataset_feeds_the_pretraining_model(dynamic_dir, tiny_config):
    from bertkit.model.models import BertPretrainer

    features, labels = next(iter(load_pretraining_dataset(dynamic_dir, 4, seed=1)))
    config = dataclasses.replace(tiny_config, vocab_size=30522, max_position_embeddings=SEQ)
    outputs = BertPretrainer(config)(features)
    assert outputs["mlm_logits"].shape == (4, PRED, 30522) and outputs["nsp_logits"].shape == (4, 2)
    assert labels["masked_lm_ids"].shape == (4, PRED) and labels["next_sentence_labels"].shape == (4,)


def test_dynamic_masks_change_per_epoch_and_repeat_per_seed(dynamic_dir):
    def two_epochs(seed):
        ds = load_pretraining_dataset(dynamic_dir, 32, seed=seed)
        return [np.concatenate([f["masked_lm_positions"] for f, _ in _as_numpy(ds)]) for _ in range(2)]

    epoch1, epoch2 = two_epochs(3)
    again1, again2 = two_epochs(3)
    other1, _ = two_epochs(4)
    assert np.array_equal(epoch1, again1) and np.array_equal(epoch2, again2)
    assert not np.array_equal(epoch1, epoch2)
    assert not np.array_equal(epoch1, other1)


def test_iterator_checkpoint_restores_the_data_position(dynamic_dir, tmp_path):
    # The trainer resumes by checkpointing the iterator: shuffle order and dynamic masks continue exactly.
    iterator = iter(load_pretraining_dataset(dynamic_dir, 8, seed=2, repeat=True, whole_word_mask=True))
    for _ in range(3):
        next(iterator)
    path = tf.train.Checkpoint(data=iterator).save(str(tmp_path / "ckpt"))
    expected = [next(iterator)[0]["input_ids"].numpy() for _ in range(2)]
    resumed = iter(load_pretraining_dataset(dynamic_dir, 8, seed=2, repeat=True, whole_word_mask=True))
    tf.train.Checkpoint(data=resumed).restore(path)
    assert all(np.array_equal(e, next(resumed)[0]["input_ids"].numpy()) for e in expected)


def test_input_pipelines_split_the_shards(dynamic_dir):
    total = read_metadata(dynamic_dir)["num_instances"]
    counts = []
    for pipeline in range(3):
        context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=pipeline)
        ds = load_pretraining_dataset(dynamic_dir, 1, shuffle=False, input_context=context)
        counts.append(sum(1 for _ in ds))
    assert sum(counts) == total and min(counts) >= total // 3
    with pytest.raises(ValueError, match="3 shards cannot be split over 4"):
        load_pretraining_dataset(dynamic_dir, 1, input_context=tf.distribute.InputContext(4, 0))


def _check_dynamic_batches(batches, spec, whole_word):
    kinds, total_masked, total_candidates = Counter(), 0, 0
    for f, lab in batches:
        ids, positions, weights = f["input_ids"], f["masked_lm_positions"], lab["masked_lm_weights"]
        for row in range(len(ids)):
            valid = positions[row][weights[row] > 0]
            original = ids[row].copy()
            original[valid] = lab["masked_lm_ids"][row][weights[row] > 0]
            n = int((~spec.is_special[original]).sum())
            k = min(PRED, max(1, round(n * 0.15)))
            assert np.all(np.diff(valid) > 0)
            assert not spec.is_special[original[valid]].any()  # specials never masked
            assert np.array_equal(f["attention_mask"][row], (original != spec.pad_id).astype(np.int32))
            unmasked = np.setdiff1d(np.arange(SEQ), valid)
            assert np.array_equal(ids[row][unmasked], original[unmasked])
            if whole_word:
                assert len(valid) <= k
                chosen = set(valid.tolist())
                for i in range(1, SEQ):  # a "##" piece is masked exactly when the piece before it is
                    if spec.is_subword[original[i]] and not spec.is_special[original[i - 1]]:
                        assert (i in chosen) == (i - 1 in chosen)
            else:
                assert len(valid) == k
            for p in valid:
                kinds["mask" if ids[row][p] == spec.mask_id else "keep" if ids[row][p] == original[p]
                      else "random"] += 1
            total_masked += len(valid)
            total_candidates += n
    return kinds, total_masked / total_candidates


def test_dynamic_masking_rules(dynamic_dir):
    spec = masking_spec_from_dir(dynamic_dir)
    batches = _as_numpy(load_pretraining_dataset(dynamic_dir, 64, seed=0))
    kinds, rate = _check_dynamic_batches(batches, spec, whole_word=False)
    total = sum(kinds.values())
    assert total > 5000
    assert abs(rate - 0.15) < 0.01
    assert abs(kinds["mask"] / total - 0.8) < 0.03
    assert abs(kinds["keep"] / total - 0.1) < 0.03
    assert abs(kinds["random"] / total - 0.1) < 0.03
    nsp = np.concatenate([lab["next_sentence_labels"] for _, lab in batches])
    assert abs(nsp.mean() - 0.5) < 0.05


def test_dynamic_whole_word_masking_never_splits_a_word(dynamic_dir):
    spec = masking_spec_from_dir(dynamic_dir)
    batches = _as_numpy(load_pretraining_dataset(dynamic_dir, 64, seed=0, whole_word_mask=True))
    _, rate = _check_dynamic_batches(batches, spec, whole_word=True)
    assert 0.14 < rate < 0.155


def test_in_graph_whole_word_greedy_matches_reference_rule():
    # Vocab: 0-4 specials, 5.. words, 9.. "##" pieces. Budget k = round(0.15 * 20) = 3.
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "##x", "##y", "##z"]
    spec = MaskingSpec.from_vocab(tokens, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4)
    row = [2, 5, 9, 10, 11, 6, 9, 10, 7, 8, 5, 6, 7, 8, 5, 9, 6, 7, 8, 5, 6, 3, 0, 0]
    assert len(row) - 4 == 20  # 20 candidates
    masking = DynamicMasking(spec, max_predictions=5, whole_word_mask=True)
    out = masking(tf.constant([row] * 100, tf.int32), tf.constant([7, 0], tf.int64))  # 100 draws
    positions, weights = out["masked_lm_positions"].numpy(), out["masked_lm_weights"].numpy()
    assert len({tuple(p) for p in positions}) > 20
    for r in range(100):
        chosen = positions[r][weights[r] > 0].tolist()
        # Budget 3: the 4-piece word (positions 1-4) never fits; greedy always fills exactly 3.
        assert len(chosen) == 3 and not {1, 2, 3, 4} & set(chosen)
        for word in ([5, 6, 7], [14, 15]):
            assert all(p in chosen for p in word) or not any(p in chosen for p in word)


def test_bad_input_writes_nothing(tmp_path, tokenizer, shared_data):
    one = tmp_path / "one.txt"
    one.write_text("Only one sentence in the whole corpus.\n")
    out = tmp_path / "out"
    with pytest.raises(CorpusError, match="single sentence"):
        write_pretraining_data([str(one)], tokenizer, out, _config())
    caesar = shared_data / "pretrain" / "gutenberg" / "shakespeare-caesar.txt"
    with pytest.raises(CorpusError, match=r"shakespeare-caesar\.txt:119"):
        write_pretraining_data([str(one), str(caesar)], tokenizer, out, _config())
    assert not out.exists()
    with pytest.raises(FileNotFoundError, match="not a complete"):
        load_pretraining_dataset(tmp_path, 8)


def test_cli_pretrain_data(tmp_path, corpus, shared_data, capsys):
    from bertkit.cli import main

    out = tmp_path / "data"
    vocab = shared_data / "vocab" / "bert-base-uncased"
    rc = main(["pretrain-data", "--corpus", *corpus[:2], "--vocab", str(vocab), "--out", str(out),
               "--max-length", "32", "--max-predictions", "5", "--shards", "2", "--dynamic-mask",
               "--whole-word-mask", "--seed", "1", "--no-progress"])
    assert rc == 0
    assert "instances (dynamic masking" in capsys.readouterr().out
    metadata = read_metadata(out)
    assert (metadata["max_length"], metadata["max_predictions"], metadata["masking"]) == (32, 5, "dynamic")
    assert metadata["whole_word_mask"] and metadata["dupe_factor"] == 1 and len(metadata["shards"]) == 2
    from bertkit.tokenizer import load_tokenizer

    assert load_tokenizer(str(out)).vocab_size == metadata["vocab_size"]  # OUT is a tokenizer directory too

    rc = main(["pretrain-data", "--corpus", corpus[0], "--vocab", str(vocab), "--out", str(out),
               "--max-length", "4"])
    assert rc == 2 and "--max-length 4 is too small" in capsys.readouterr().err
