"""NER readers (CoNLL-2003 IOB1, WNUT-17, JSONL, bad input), IOB1 -> IOB2, and the windowed
word labels -> piece labels -> word labels round trip on real data."""

import collections

import numpy as np
import pytest
from tests.data.finetune_tokenizer import tokenizer  # noqa: F401  (fixture)
from hypothesis import given, settings
from hypothesis import strategies as st

from bertkit.data import ner as N
from bertkit.data.common import IGNORE_INDEX


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def entity_counts(examples):
    return dict(collections.Counter(t for e in examples for t, _, _ in N.tag_spans(e.tags)))


@pytest.fixture(scope="module")
def conll_dev(shared_data):
    return N.read_conll(shared_data / "conll2003/eng.testa")


@pytest.fixture(scope="module")
def wnut_dev(shared_data):
    return N.read_conll(shared_data / "wnut17/emerging.dev.conll")


# --- readers on the real files (counts from the data README) -------------------------------------

def test_conll2003_iob1_counts(conll_dev):
    assert len(conll_dev) == 3250 and sum(len(e.words) for e in conll_dev) == 51362
    # IOB1 read as IOB2: the entity counts are the published ones
    assert entity_counts(conll_dev) == {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}
    assert all(t == "O" or t[:2] in ("B-", "I-") for e in conll_dev for t in e.tags)
    assert conll_dev[0].words[:3] == ["CRICKET", "-", "LEICESTERSHIRE"]


def test_wnut17_tab_only_separators(shared_data, wnut_dev):
    train = N.read_conll(shared_data / "wnut17/wnut17train.conll")
    assert (len(train), sum(len(e.words) for e in train)) == (3394, 62730)
    assert sum(entity_counts(train).values()) == 1975
    assert (len(wnut_dev), sum(len(e.words) for e in wnut_dev)) == (1009, 15733)
    assert sum(entity_counts(wnut_dev).values()) == 836
    assert N.infer_tag_list(train)[:3] == ["O", "B-corporation", "I-corporation"]


# --- tag schemes ---------------------------------------------------------------------------------

def test_iob1_to_iob2_examples():
    assert N.iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]) == \
        ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG"]


TAGS = st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B", "I-C"]), max_size=30)


@settings(max_examples=300, deadline=None)
@given(TAGS)
def test_iob_conversion_matches_seqeval(tags):
    from seqeval.metrics.sequence_labeling import get_entities

    iob2 = N.iob1_to_iob2(tags)
    assert N.iob1_to_iob2(iob2) == iob2  # idempotent: IOB2 input passes unchanged
    # same entities as seqeval's default reading, of the input and of the converted sequence
    assert N.tag_spans(iob2) == sorted(get_entities(tags), key=lambda s: s[1]) == \
        sorted(get_entities(iob2), key=lambda s: s[1])


# --- round trip ----------------------------------------------------------------------------------

def round_trip(examples, tokenizer, max_length, stride=None, seed=0):
    """featurize -> fake per-piece predictions (gold at owned first pieces, noise elsewhere) -> words."""
    tag_list = N.infer_tag_list(examples)
    f = N.featurize_ner(examples, tokenizer, tag_list=tag_list, max_length=max_length, stride=stride)
    assert f["input_ids"].shape[1] == max_length
    owned = f["word_index"] >= 0
    # labels exactly at owned positions, each word of each sentence owned exactly once
    assert ((f["labels"] != IGNORE_INDEX) == owned).all()
    pairs = np.stack([np.repeat(f["example_index"], max_length).reshape(-1, max_length)[owned],
                      f["word_index"][owned]], axis=1)
    assert len(np.unique(pairs, axis=0)) == len(pairs) == sum(len(e.words) for e in examples)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, len(tag_list), size=f["labels"].shape)
    predictions = np.where(owned, f["labels"], noise)
    words = N.word_predictions(f, predictions, examples)
    assert [[tag_list[i] for i in w] for w in words] == [e.tags for e in examples]
    # the same through one-hot scores [N, L, C]
    words = N.word_predictions(f, np.eye(len(tag_list))[np.maximum(predictions, 0)], examples)
    assert [[tag_list[i] for i in w] for w in words] == [e.tags for e in examples]
    return f


def test_round_trip_conll_dev(conll_dev, tokenizer):
    f = round_trip(conll_dev, tokenizer, max_length=128)
    assert len(f["input_ids"]) >= len(conll_dev)


@pytest.mark.parametrize("max_length, stride", [(12, None), (8, 1), (16, 14)])
def test_round_trip_tiny_windows(conll_dev, wnut_dev, tokenizer, max_length, stride):
    sample = conll_dev[::10] + wnut_dev[::4]
    f = round_trip(sample, tokenizer, max_length=max_length, stride=stride)
    assert len(f["input_ids"]) > 1.5 * len(sample)  # most sentences really are windowed


def test_round_trip_wnut_dev(wnut_dev, tokenizer):
    round_trip(wnut_dev, tokenizer, max_length=128)
    round_trip(wnut_dev, tokenizer, max_length=10)


def test_first_piece_carries_the_label(tokenizer):
    ex = [N.NerExample(["Johanson", "visited", "\u200b", "Reykjavik", "."],
                       ["B-PER", "O", "O", "B-LOC", "O"])]
    tag_list = N.infer_tag_list(ex)
    f = N.featurize_ner(ex, tokenizer, tag_list=tag_list, max_length=32)
    ids, labels = f["input_ids"][0], f["labels"][0]
    pieces = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)) or [tokenizer.unk_id]
              for w in ex[0].words]
    assert pieces[2] == [tokenizer.unk_id]  # a word with no pieces still gets a position
    expected_ids = [tokenizer.cls_id] + [p for w in pieces for p in w] + [tokenizer.sep_id]
    expected_labels = [IGNORE_INDEX] + [tag_list.index(t) if j == 0 else IGNORE_INDEX
                                        for w, t in zip(pieces, ex[0].tags)
                                        for j in range(len(w))] + [IGNORE_INDEX]
    assert ids[: len(expected_ids)].tolist() == expected_ids
    assert labels[: len(expected_labels)].tolist() == expected_labels
    assert (labels[len(expected_labels):] == IGNORE_INDEX).all()


def test_entities_with_character_offsets():
    text = "Angela Merkel met U.S. officials in New York's harbour."
    words = N.split_words(text)
    assert [w for w, _, _ in words] == ["Angela", "Merkel", "met", "U.S", ".", "officials", "in",
                                        "New", "York's", "harbour", "."]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O", "B-LOC", "I-LOC", "O", "O"]
    assert N.entities(text, words, tags) == [
        {"type": "PER", "start": 0, "end": 13, "text": "Angela Merkel"},
        {"type": "LOC", "start": 18, "end": 22, "text": "U.S."},
        {"type": "LOC", "start": 36, "end": 46, "text": "New York's"}]


# --- bad input -----------------------------------------------------------------------------------

def test_conll_bom_crlf_docstart_and_separators(tmp_path):
    path = write(tmp_path, "a.conll", "\ufeff-DOCSTART- O\r\n\r\nEU I-ORG\r\nrejects O\r\n \t \r\n"
                                      "Peter I-PER\r\nBlackburn I-PER\r\n\r\n\r\n")
    examples = N.read_conll(path)  # tags as the file gives them (IOB1 here)
    assert [(e.words, e.tags) for e in examples] == [
        (["EU", "rejects"], ["I-ORG", "O"]), (["Peter", "Blackburn"], ["I-PER", "I-PER"])]
    assert examples[1].source.endswith("a.conll:6")
    assert [e.tags for e in N.read_conll(path, to_iob2=True)] == [["B-ORG", "O"], ["B-PER", "I-PER"]]


def test_conll_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"b\.conll:3: expected 4 columns, found 3"):
        N.read_conll(write(tmp_path, "b.conll", "EU NNP I-NP I-ORG\n\nrejects VBZ O\n"))
    with pytest.raises(ValueError, match=r"c\.conll:2: tag 'PER' is not O, B-TYPE or I-TYPE"):
        N.read_conll(write(tmp_path, "c.conll", "EU\tO\nPeter\tPER\n"))
    with pytest.raises(ValueError, match=r"d\.conll:1: expected 2 columns, found 1"):
        N.read_conll(write(tmp_path, "d.conll", "EU\n"))
    for text in ("", "\n\t\n", "-DOCSTART- -X- O O\n\n"):
        with pytest.raises(ValueError, match="no sentences"):
            N.read_conll(write(tmp_path, "e.conll", text))


def test_unknown_tag_in_dev(tmp_path):
    dev = N.read_conll(write(tmp_path, "dev.conll", "a O\n\nb B-X\nc I-NEW\n"))
    with pytest.raises(ValueError, match=r"dev\.conll:3: unknown tag 'I-NEW'"):
        N.encode_tags(dev, ["O", "B-X", "I-X"])


def test_jsonl_reader(tmp_path):
    path = write(tmp_path, "n.jsonl", '{"tokens": ["Jo", "ran"], "tags": ["I-PER", "O"]}\r\n\n'
                                      '{"tokens": ["x"], "tags": ["O"]}\n')
    examples = N.read_ner_file(path)
    assert [(e.words, e.tags) for e in examples] == [(["Jo", "ran"], ["I-PER", "O"]), (["x"], ["O"])]
    assert N.read_ner_file(path, to_iob2=True)[0].tags == ["B-PER", "O"]
    with pytest.raises(ValueError, match=r"m\.jsonl:1: 2 tokens but 'tags' is not a list of 2"):
        N.read_ner_file(write(tmp_path, "m.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n'))
    with pytest.raises(ValueError, match=r"k\.jsonl:1: need a JSON object with 'tokens'"):
        N.read_ner_file(write(tmp_path, "k.jsonl", '{"words": ["a"]}\n'))
