"""The in-graph tokenizer gives the Python path's ids and offsets, in tf.function, tf.data and SavedModels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_text")

from .test_torture import TORTURE  # noqa: E402


def _in_graph_gap(text: str) -> bool:
    """Documented gap: with strip_accents, the in-graph path does not re-order runs of combining
    marks that contain one of the ~80 marks HF re-orders but does not strip (musical symbols,
    Glagolitic, Adlam, a few viramas)."""
    from bertkit.tokenizer.basic import COMBINING, STRIPPED_MARKS

    return any(ord(c) in COMBINING and ord(c) not in STRIPPED_MARKS for c in text)


TORTURE_GRAPH = [t for t in TORTURE if not _in_graph_gap(t)]
PAIRS = ["short", "The quick brown fox jumps over the lazy dog.", "", "naïve café 中文 [MASK]", "x " * 40]


@pytest.fixture(scope="module")
def graph_longest(ours):
    return ours.in_graph(max_length=None, padding="longest", return_offsets=True)


def _assert_same(ours_encs, out) -> None:
    out = {k: v.numpy() for k, v in out.items()}
    for i, enc in enumerate(ours_encs):
        n = len(enc.ids)
        assert out["input_ids"][i].tolist() == enc.ids
        assert out["token_type_ids"][i].tolist() == enc.type_ids
        assert out["attention_mask"][i].tolist() == enc.attention_mask
        if "offsets" in out:
            assert [tuple(o) for o in out["offsets"][i][:n].tolist()] == enc.offsets
            assert out["word_ids"][i][:n].tolist() == [-1 if w is None else w for w in enc.word_ids]


def test_torture_matches_python(ours, graph_longest):
    _assert_same(ours.encode_batch(TORTURE_GRAPH, padding="longest"), graph_longest(tf.constant(TORTURE_GRAPH)))


@pytest.mark.parametrize("lower_case,strip_accents,chinese", [(True, False, True), (False, True, False)])
def test_other_settings_match_python(uncased, lower_case, strip_accents, chinese):
    from bertkit.tokenizer import BertTokenizer

    tok = BertTokenizer(uncased.inv_vocab, lower_case=lower_case, strip_accents=strip_accents,
                        tokenize_chinese_chars=chinese, check_casing=False)
    graph = tok.in_graph(max_length=None, padding="longest", return_offsets=True)
    _assert_same(tok.encode_batch(TORTURE_GRAPH, padding="longest"), graph(tf.constant(TORTURE_GRAPH)))


@pytest.mark.parametrize("strategy", ["longest_first", "only_second"])
@pytest.mark.parametrize("max_length", [8, 16, 64])
def test_pairs_truncation_padding(uncased, strategy, max_length):
    texts = [a for a, _ in itertools.product(PAIRS, PAIRS)]
    pairs = [b for _, b in itertools.product(PAIRS, PAIRS)]
    graph = uncased.in_graph(max_length=max_length, truncation=strategy, return_offsets=True)
    out = graph(tf.constant(texts), tf.constant(pairs))
    assert out["input_ids"].shape == (len(texts), max_length)
    for i, (a, b) in enumerate(zip(texts, pairs)):
        try:
            enc = uncased.encode(a, b, max_length=max_length, truncation=strategy, padding="max_length")
        except ValueError:
            continue  # Python refuses (only_second cannot fit); in-graph falls back, documented
        _assert_same([enc], {k: v[i:i + 1] for k, v in out.items()})


def test_single_with_max_length(uncased):
    texts = ["a " * 100, "hello", ""]
    out = uncased.in_graph(max_length=10)(tf.constant(texts))
    _assert_same(uncased.encode_batch(texts, max_length=10, padding="max_length"), out)


def test_in_graph_truncation_rule_matches_python(uncased):
    from bertkit.tokenizer.encoding import truncated_lengths

    graph = uncased.in_graph(max_length=11)  # budget 8 for pairs
    grid = list(itertools.product(range(12), range(12)))
    la = tf.constant([a for a, _ in grid], tf.int64)
    lb = tf.constant([b for _, b in grid], tf.int64)
    ka, kb = graph._truncate(la, lb)
    assert list(zip(ka.numpy().tolist(), kb.numpy().tolist())) == [truncated_lengths(a, b, 8, "longest_first")
                                                                  for a, b in grid]


def test_tf_function_and_tf_data(uncased):
    graph = uncased.in_graph(max_length=16)
    texts = ["Hello world!", "naïve [MASK] test", "", "中文 text"]
    eager = graph(tf.constant(texts))
    compiled = tf.function(graph)(tf.constant(texts))
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(graph)
    from_data = {k: np.concatenate([b[k].numpy() for b in ds]) for k in eager}
    per_example = next(iter(tf.data.Dataset.from_tensor_slices(texts).map(graph).batch(4)))
    for k in eager:
        np.testing.assert_array_equal(eager[k].numpy(), compiled[k].numpy())
        np.testing.assert_array_equal(eager[k].numpy(), from_data[k])
        np.testing.assert_array_equal(eager[k].numpy(), per_example[k].numpy())


def test_saved_model_round_trip(tmp_path, uncased):
    graph = uncased.in_graph(max_length=12)
    tf.saved_model.save(graph, str(tmp_path), signatures=graph.serving_signatures())
    loaded = tf.saved_model.load(str(tmp_path))
    texts = tf.constant(["Exported models keep the tokenizer.", "é [MASK]"])
    out = loaded.signatures["serving_default"](text=texts)
    want = graph(texts)
    for k in want:
        np.testing.assert_array_equal(out[k].numpy(), want[k].numpy())
    pairs = tf.constant(["a", "b"])
    pair_out = loaded.signatures["pair"](text=texts, pair=pairs)
    np.testing.assert_array_equal(pair_out["token_type_ids"].numpy(), graph(texts, pairs)["token_type_ids"].numpy())


def test_invalid_utf8_bytes_do_not_crash(uncased):
    out = uncased.in_graph(max_length=8)(tf.constant([b"ok \xff\xfe bytes"]))
    assert out["input_ids"].numpy()[0].tolist()[:4] == uncased.encode("ok bytes").ids[:4]


def test_overlapping_special_tokens_rejected(uncased):
    from bertkit.tokenizer import BertTokenizer

    vocab = ["<s>", "s>", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]
    tok = BertTokenizer(vocab, pad_token="<s>", mask_token="s>", check_casing=False)
    with pytest.raises(NotImplementedError, match="overlap"):
        tok.in_graph()
