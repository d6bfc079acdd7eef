"""Classification readers (GLUE layouts, TSV/CSV/JSONL, bad input) and featurizer."""

import collections

import numpy as np
import pytest
from tests.data.finetune_tokenizer import tokenizer  # noqa: F401  (fixture)

from bertkit.data import classification as C
from bertkit.data.common import concat_batches


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def label_counts(examples):
    return dict(collections.Counter(e.label for e in examples))


# --- real GLUE / AG News files with flags only ---------------------------------------------------

@pytest.mark.parametrize("name, path, n, counts", [
    ("sst2", "sst2/dev.tsv", 872, {"0": 428, "1": 444}),
    ("cola", "cola/in_domain_dev.tsv", 527, {"0": 162, "1": 365}),
    ("mrpc", "mrpc/dev.tsv", 408, {"0": 129, "1": 279}),
])
def test_glue_layouts(shared_data, name, path, n, counts):
    examples = C.read_classification_file(shared_data / path, **C.GLUE_COLUMNS[name])
    assert len(examples) == n and label_counts(examples) == counts
    assert C.infer_label_list(examples) == ["0", "1"]
    assert all(e.text and "\t" not in e.text for e in examples)
    assert all((e.text_pair is not None) == (name == "mrpc") for e in examples)


def test_glue_by_index_detects_header(shared_data):
    sst = C.read_classification_file(shared_data / "sst2/dev.tsv", text_column="0", label_column="1")
    assert len(sst) == 872 and sst[0].source.endswith("dev.tsv:2")
    mrpc = C.read_classification_file(shared_data / "mrpc/dev.tsv", text_column=3,
                                      text_pair_column=4, label_column=0)
    assert len(mrpc) == 408
    # the BOM is not part of the first header name, and unbalanced quotes stay in the text
    assert C.read_classification_file(shared_data / "mrpc/dev.tsv", text_column="#1 String",
                                      label_column="Quality")[0].label == "1"
    assert mrpc[0].text_pair.startswith('"The foodservice')
    cola = C.read_classification_file(shared_data / "cola/in_domain_dev.tsv", text_column=3,
                                      label_column=1)  # no header: first row's label recurs
    assert len(cola) == 527


def test_agnews_string_labels(shared_data):
    examples = C.read_classification_file(shared_data / "agnews/dev.tsv")
    assert len(examples) == 10001
    assert label_counts(examples) == {"Business": 2496, "Sci/Tech": 2538, "Sports": 2458, "World": 2509}
    assert C.infer_label_list(examples) == ["Business", "Sci/Tech", "Sports", "World"]


# --- formats -------------------------------------------------------------------------------------

def test_bom_crlf_tsv(tmp_path):
    path = write(tmp_path, "d.tsv", "\ufefftext\tlabel\r\nhello there\tpos\r\nbad\tneg\r\n\r\n")
    examples = C.read_classification_file(path, text_column="text", label_column="label")
    assert [(e.text, e.label) for e in examples] == [("hello there", "pos"), ("bad", "neg")]


def test_csv_quoting_and_line_numbers(tmp_path):
    path = write(tmp_path, "d.csv", 'id,text,label\n1,"a, quoted\nline",x\n2,plain,y\n3,"z",x,EXTRA\n')
    with pytest.raises(ValueError, match=r"d\.csv:5: expected 3 columns, found 4"):
        C.read_classification_file(path, text_column="text", label_column="label")
    path = write(tmp_path, "ok.csv", 'id,text,label\n1,"a, quoted\nline",x\n2,plain,y\n')
    examples = C.read_classification_file(path, text_column="text", label_column="label")
    assert examples[0].text == "a, quoted\nline" and examples[1].source.endswith("ok.csv:4")


def test_jsonl_string_and_int_labels(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": 10}\r\n'
                                      '{"text": "c", "label": 2, "pair": "p"}\n')
    examples = C.read_classification_file(path)
    assert [e.label for e in examples] == ["1", "10", "2"]
    assert C.infer_label_list(examples) == ["1", "2", "10"]
    unlabeled = C.read_classification_file(path, has_labels=False)
    assert [e.label for e in unlabeled] == [None] * 3
    with pytest.raises(ValueError, match=r"d\.jsonl:1: no field 'pair'"):
        C.read_classification_file(path, text_pair_column="pair")


def test_label_list_order():
    ex = [C.ClassificationExample("t", label=lab) for lab in ["b", "a", "B", "a"]]
    assert C.infer_label_list(ex) == ["B", "a", "b"]
    ex = [C.ClassificationExample("t", label=lab) for lab in ["10", "-1", "2"]]
    assert C.infer_label_list(ex) == ["-1", "2", "10"]


def test_parse_column():
    assert C.parse_column("3") == 3 and C.parse_column("-1") == -1
    assert C.parse_column("#1 String") == "#1 String" and C.parse_column(None) is None


# --- bad input -----------------------------------------------------------------------------------

def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "train.tsv", "a\t0\nb\t1\nc\t1\textra\n")
    with pytest.raises(ValueError, match=r"train\.tsv:3: expected 2 columns, found 3"):
        C.read_classification_file(path, header=False)


def test_unknown_label_names_file_and_line(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\nok\t0\nhuh\t7\nhm\t7\n")
    with pytest.raises(ValueError, match=r"dev\.tsv:3: unknown label '7' \(2 rows"):
        C.read_classification_file(path, text_column="sentence", label_column="label",
                                   label_list=["0", "1"])
    examples = C.read_classification_file(path, text_column="sentence", label_column="label")
    with pytest.raises(ValueError, match=r"dev\.tsv:3: unknown label"):
        C.encode_labels(examples, ["0", "1"])


@pytest.mark.parametrize("name, text", [("e.tsv", ""), ("b.tsv", "\ufeff"), ("h.tsv", "text\tlabel\n"),
                                        ("e.jsonl", "\n\n"), ("e.csv", "\r\n")])
def test_empty_file(tmp_path, name, text):
    with pytest.raises(ValueError, match="no examples"):
        C.read_classification_file(write(tmp_path, name, text), text_column="text",
                                   label_column="label")


def test_other_bad_input(tmp_path):
    path = write(tmp_path, "d.tsv", "a\t0\nb\t1\n")
    with pytest.raises(ValueError, match="no header"):
        C.read_classification_file(path, text_column="text", header=False)
    with pytest.raises(ValueError, match=r"d\.tsv:1: column index 5 out of range"):
        C.read_classification_file(path, text_column=5, header=False)
    with pytest.raises(ValueError, match=r"no column 'txt' in the header"):
        C.read_classification_file(path, text_column="txt", header=True)
    with pytest.raises(ValueError, match=r"d\.jsonl:2: invalid JSON"):
        C.read_classification_file(write(tmp_path, "d.jsonl", '{"text": "a", "label": 0}\n{oops\n'))
    with pytest.raises(ValueError, match=r"x\.tsv:2: not valid UTF-8"):
        C.read_classification_file(write(tmp_path, "x.tsv", "a\t0\nb\xe9\t1\n", "latin-1"))


# --- features ------------------------------------------------------------------------------------

def test_featurize_single_and_pair(tokenizer):
    ex = [C.ClassificationExample("Hello world", label="b"),
          C.ClassificationExample("a " * 200, label="a")]
    f = C.featurize_classification(ex, tokenizer, label_list=["a", "b"], max_length=16)
    assert {k: v.shape for k, v in f.items()} == {"input_ids": (2, 16), "token_type_ids": (2, 16),
                                                  "attention_mask": (2, 16), "labels": (2,)}
    hello = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("Hello world"))
    n = len(hello) + 2
    assert f["input_ids"][0, :n].tolist() == [tokenizer.cls_id, *hello, tokenizer.sep_id]
    assert (f["input_ids"][0, n:] == tokenizer.pad_id).all() and f["attention_mask"][0].sum() == n
    assert f["attention_mask"][1].all() and f["input_ids"][1, -1] == tokenizer.sep_id
    assert f["labels"].tolist() == [1, 0]

    pair = C.featurize_classification([C.ClassificationExample("one two", "three", "a")], tokenizer,
                                      label_list=["a"], max_length=12)
    sep = np.flatnonzero(pair["input_ids"][0] == tokenizer.sep_id)
    types = pair["token_type_ids"][0]
    assert len(sep) == 2 and (types[: sep[0] + 1] == 0).all() and (types[sep[0] + 1: sep[1] + 1] == 1).all()
    with pytest.raises(ValueError, match="label_list"):
        C.featurize_classification(ex, tokenizer)


def test_featurize_glue_pair_truncation(shared_data, tokenizer):
    ex = C.read_classification_file(shared_data / "mrpc/dev.tsv", **C.GLUE_COLUMNS["mrpc"])
    f = C.featurize_classification(ex, tokenizer, label_list=["0", "1"], max_length=32)
    lengths = f["attention_mask"].sum(1)
    assert lengths.max() == 32 and (f["input_ids"][np.arange(len(ex)), lengths - 1] == tokenizer.sep_id).all()
    # both segments keep some tokens under longest_first truncation
    assert ((f["token_type_ids"] == 1).sum(1) >= 2).all()


def test_make_dataset_fixed_and_bucketed(tokenizer):
    ex = [C.ClassificationExample("word " * (i % 13 + 1), label=str(i % 3)) for i in range(50)]
    f = C.featurize_classification(ex, tokenizer, label_list=["0", "1", "2"], max_length=24)
    fixed = list(C.make_dataset(f, 16).as_numpy_iterator())
    assert [b[0]["input_ids"].shape for b in fixed] == [(16, 24)] * 3 + [(2, 24)]
    ds = C.make_dataset(f, 8, shuffle=True, seed=3, bucket=True, pad_multiple=8)
    epochs = [list(ds.as_numpy_iterator()) for _ in range(2)]
    for batches in epochs:
        seen = np.concatenate([b[0]["input_ids"][:, :2] for b in batches])
        assert len(seen) == 50
        for inputs, labels in batches:
            width = inputs["input_ids"].shape[1]
            assert width % 8 == 0 and width >= inputs["attention_mask"].sum(1).max()
            assert width - 8 < inputs["attention_mask"].sum(1).max()
    # every example exactly once per epoch (rows identified by their labels + lengths multiset)
    key = sorted(zip(f["labels"].tolist(), f["attention_mask"].sum(1).tolist()))
    for batches in epochs:
        got = sorted((lab, int(m.sum())) for inputs, labels in batches
                     for lab, m in zip(labels.tolist(), inputs["attention_mask"]))
        assert got == key
    assert [b[1].tolist() for b in epochs[0]] != [b[1].tolist() for b in epochs[1]]
    # evaluation: bucketed but in feature order; concat_batches restores [N, L]
    ordered = list(C.make_dataset(f, 8, bucket=True, label_keys=None).as_numpy_iterator())
    assert min(b["input_ids"].shape[1] for b in ordered) < 24
    assert (concat_batches([b["input_ids"] for b in ordered], 24, tokenizer.pad_id)
            == f["input_ids"]).all()
