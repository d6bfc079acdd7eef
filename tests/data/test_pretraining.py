"""Pretraining instances (bertkit.data.pretraining): reading, NSP pairs, masking, statistics, bad input.

Statistics are measured on real text: bert_sample_text.txt (BERT format) plus three Gutenberg books
(prose), tokenized with bert-base-uncased's vocab.
"""

from __future__ import annotations

import gzip
import logging
import random
from collections import Counter

import numpy as np
import pytest

from bertkit.data.corpus import CorpusError, RawDocument, check_corpus, detect_format, read_documents, split_sentences
from bertkit.data.masking import MaskingSpec, create_masked_lm_predictions
from bertkit.data.pretraining import (
    PretrainingDataConfig, TokenizedDocument, _pools, _truncate_seq_pair, create_instances_from_document,
    create_pretraining_instances, tokenize_document,
)

BOOKS = ("austen-persuasion.txt", "chesterton-brown.txt", "shakespeare-macbeth.txt")
SEQ, PRED = 128, 20


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    from bertkit.tokenizer import load_tokenizer

    return load_tokenizer(str(shared_data / "vocab" / "bert-base-uncased"))


@pytest.fixture(scope="module")
def spec(tokenizer):
    return MaskingSpec.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def corpus(shared_data):
    pre = shared_data / "pretrain"
    return [str(pre / "bert_sample_text.txt")] + [str(pre / "gutenberg" / b) for b in BOOKS]


def _generate(corpus, tokenizer, seed=7, **overrides):
    config = PretrainingDataConfig(max_length=SEQ, max_predictions=PRED, **overrides)
    stats: dict = {}
    return list(create_pretraining_instances(corpus, tokenizer, config, seed=seed, stats=stats)), stats


@pytest.fixture(scope="module")
def unmasked(corpus, tokenizer):
    return _generate(corpus, tokenizer, static_mask=False)


@pytest.fixture(scope="module")
def masked(corpus, tokenizer):
    # Same seed and config: the same instances as `unmasked`, then masked.
    return _generate(corpus, tokenizer)


@pytest.fixture(scope="module")
def documents(corpus, tokenizer, spec):
    return [tokenize_document(d, tokenizer, spec, SEQ - 3) for d in read_documents(corpus)]


def _original_ids(instance):
    ids = list(instance.input_ids)
    for p, t in zip(instance.masked_lm_positions, instance.masked_lm_ids):
        ids[p] = t
    return ids


# --- reading ------------------------------------------------------------------------------------
def test_split_sentences_rules():
    text = ('Mr. Knightley came at 4 A. M. to see Emma.  "Is it so?" she cried. "Yes!" It is.\n'
            "He left e.g. early. St. Paul was there. 1:2 And the earth was without form.")
    assert split_sentences(text) == [
        "Mr. Knightley came at 4 A. M. to see Emma.", '"Is it so?" she cried.', '"Yes!"', "It is.",
        "He left e.g. early.", "St. Paul was there.", "1:2 And the earth was without form."]
    assert split_sentences("no end punctuation\nacross lines") == ["no end punctuation across lines"]


def test_formats_detected_and_documents_read(corpus, shared_data):
    docs = list(read_documents(corpus))
    # bert_sample_text: 3 documents of one sentence per line; each book (prose) is one document.
    assert [d.path.rsplit("/", 1)[-1] for d in docs] == ["bert_sample_text.txt"] * 3 + list(BOOKS)
    assert docs[1].sentences[0].startswith("The rain had only ceased")
    assert len(docs[3].sentences) > 2000 and all("\n" not in s for s in docs[3].sentences)
    with open(shared_data / "pretrain" / "gutenberg" / "austen-emma.txt", encoding="utf-8") as f:
        assert detect_format(f.readlines()[:300]) == "prose"
    with open(corpus[0], encoding="utf-8") as f:
        assert detect_format(f.readlines()) == "lines"


def test_crlf_and_gzip_input(shared_data, tmp_path):
    moby = shared_data / "pretrain" / "gutenberg" / "melville-moby_dick.txt"
    head = moby.read_bytes()[:20000]
    assert b"\r\n" in head
    (tmp_path / "moby.txt").write_bytes(head)
    (tmp_path / "moby.txt.gz").write_bytes(gzip.compress(head))
    (tmp_path / "moby_named_plain.txt").write_bytes(gzip.compress(head))  # gzip found by magic bytes
    plain = list(read_documents([str(tmp_path / "moby.txt")]))
    assert not any("\r" in s for s in plain[0].sentences)
    for name in ("moby.txt.gz", "moby_named_plain.txt"):
        assert list(read_documents([str(tmp_path / name)]))[0].sentences == plain[0].sentences


def test_undecodable_bytes_named_by_file_and_line(shared_data):
    caesar = shared_data / "pretrain" / "gutenberg" / "shakespeare-caesar.txt"  # ISO-8859-1
    message = r"shakespeare-caesar\.txt:119: byte 0xe6 at column 10 .*--errors replace"
    with pytest.raises(CorpusError, match=message):
        check_corpus([str(caesar), str(caesar)])
    assert caesar.read_bytes().split(b"\n")[118][9] == 0xE6
    doc = next(read_documents([str(caesar)], errors="replace"))
    assert any("\ufffd" in s for s in doc.sentences)


def test_bad_input_errors(tmp_path, corpus):
    empty, blank, one = tmp_path / "empty.txt", tmp_path / "blank.txt", tmp_path / "one.txt"
    empty.write_text("")
    blank.write_text("\n \n\t\n")
    one.write_text("One sentence.\nAnother sentence of the same document.\n")
    with pytest.raises(CorpusError, match="no corpus files"):
        check_corpus([])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        check_corpus([str(tmp_path / "missing.txt")])
    with pytest.raises(CorpusError, match="empty"):
        check_corpus([str(empty), str(blank)])
    assert check_corpus([str(one), str(blank)]).documents == 1  # one book is a corpus: split_document
    with pytest.raises(ValueError, match="--max-length 4 is too small"):
        PretrainingDataConfig(max_length=4)
    with pytest.raises(ValueError, match="max-predictions"):
        PretrainingDataConfig(max_length=16, max_predictions=20)
    with pytest.raises(ValueError, match="masked-lm-prob"):
        PretrainingDataConfig(masked_lm_prob=0.0)


def test_a_single_document_trains_with_notnext_from_its_other_half(tmp_path, tokenizer, caplog):
    one = tmp_path / "one.txt"
    sentences = [f"Sentence number {i} of the only book." for i in range(40)]
    one.write_text("\n".join(sentences) + "\n")
    config = PretrainingDataConfig(max_length=32, dupe_factor=2)
    stats = {}
    with caplog.at_level(logging.WARNING):
        instances = list(create_pretraining_instances([str(one)], tokenizer, config, fmt="lines", stats=stats))
    assert "single document" in caplog.text
    assert stats["documents"] == 1 and stats["pools"] == 1
    notnext = [i for i in instances if i.is_random_next]
    assert 0.3 < len(notnext) / len(instances) < 0.7
    assert all(i.b_document_index != i.document_index for i in notnext)  # the other half
    assert all(i.b_document_index == i.document_index for i in instances if not i.is_random_next)
    only = tmp_path / "sentence.txt"
    only.write_text("Just one sentence here.\n")
    with pytest.raises(CorpusError, match="single sentence"):
        list(create_pretraining_instances([str(only)], tokenizer, PretrainingDataConfig()))


# --- instances ----------------------------------------------------------------------------------
def test_instance_statistics_on_real_corpus(masked, unmasked, spec):
    instances, stats = masked
    assert stats["documents"] == 3 + len(BOOKS) and stats["pools"] == 1
    n = len(instances)
    assert n > 2000
    is_next = sum(not i.is_random_next for i in instances) / n
    assert abs(is_next - 0.5) <= 0.03, is_next

    kinds, masked_total, candidates_total = Counter(), 0, 0
    for inst, plain in zip(instances, unmasked[0]):
        ids, types = inst.input_ids, inst.token_type_ids
        assert len(ids) == len(types) <= SEQ
        # [CLS] A [SEP] B [SEP]; A with its [CLS]/[SEP] is segment 0, B and the last [SEP] segment 1.
        first_sep = plain.input_ids.index(spec.sep_id)
        assert plain.input_ids[0] == spec.cls_id and plain.input_ids[-1] == spec.sep_id
        structural = [t for t in plain.input_ids if t in (spec.cls_id, spec.sep_id)]
        assert structural == [spec.cls_id, spec.sep_id, spec.sep_id]
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        assert 2 <= first_sep <= len(ids) - 3  # both segments non-empty
        # Masking: never a special token; the exact count rule; labels are the original tokens.
        original = _original_ids(inst)
        assert original == plain.input_ids
        num_candidates = sum(t not in spec.special_ids for t in original)
        assert len(inst.masked_lm_positions) == min(PRED, max(1, round(num_candidates * 0.15)))
        assert inst.masked_lm_positions == sorted(set(inst.masked_lm_positions))
        assert not set(inst.masked_lm_ids) & spec.special_ids
        for p, t in zip(inst.masked_lm_positions, inst.masked_lm_ids):
            kinds["mask" if ids[p] == spec.mask_id else "keep" if ids[p] == t else "random"] += 1
        unmasked_positions = set(range(len(ids))) - set(inst.masked_lm_positions)
        assert all(ids[p] == original[p] for p in unmasked_positions)
        masked_total += len(inst.masked_lm_positions)
        candidates_total += num_candidates
    assert abs(masked_total / candidates_total - 0.15) < 0.01
    total = sum(kinds.values())
    assert abs(kinds["mask"] / total - 0.8) < 0.03
    assert abs(kinds["keep"] / total - 0.1) < 0.03
    assert abs(kinds["random"] / total - 0.1) < 0.03


def _find(haystack: bytes, needle: np.ndarray, start: int = 0) -> int:
    """Token offset of `needle` in a document's int32 bytes, at or after token `start` (-1 if absent)."""
    pos = haystack.find(needle.tobytes(), start * 4)
    while pos != -1 and pos % 4:
        pos = haystack.find(needle.tobytes(), pos + 1)
    return -1 if pos == -1 else pos // 4


def test_segments_come_from_the_right_documents(unmasked, documents, spec):
    instances, _ = unmasked
    raw = [d.ids.tobytes() for d in documents]
    for inst in instances[:1500]:
        ids = np.asarray(inst.input_ids, np.int32)
        sep = inst.input_ids.index(spec.sep_id)
        a, b = ids[1:sep], ids[sep + 1:-1]
        a_doc, b_doc = inst.document_index, inst.b_document_index
        a_at = _find(raw[a_doc], a)
        assert a_at >= 0
        if inst.is_random_next:
            # NotNext: B is text of ANOTHER document.
            assert b_doc != a_doc and _find(raw[b_doc], b) >= 0
        else:
            # IsNext: B comes after A in the same document.
            assert b_doc == a_doc and _find(raw[a_doc], b, a_at + len(a)) >= 0


def test_reproducible_for_a_seed(corpus, tokenizer, masked):
    small = corpus[:2]
    first, _ = _generate(small, tokenizer, seed=3)
    again, _ = _generate(small, tokenizer, seed=3)
    other, _ = _generate(small, tokenizer, seed=4)
    assert [i.input_ids for i in first] == [i.input_ids for i in again]
    assert [i.masked_lm_positions for i in first] == [i.masked_lm_positions for i in again]
    assert [i.input_ids for i in first] != [i.input_ids for i in other]


def test_whole_word_masking_never_splits_a_word(corpus, tokenizer, spec):
    instances, _ = _generate(corpus[:3], tokenizer, whole_word_mask=True)
    words_masked = partial = 0
    ratio = []
    for inst in instances:
        original = _original_ids(inst)
        chosen = set(inst.masked_lm_positions)
        # Words: a non-special token that is not "##", followed by its "##" pieces.
        word: list[int] = []
        for i, t in enumerate(original + [spec.sep_id]):
            if word and (t in spec.special_ids or not spec.is_subword[t]):
                hits = sum(p in chosen for p in word)
                partial += 0 < hits < len(word)
                words_masked += hits == len(word) and len(word) > 1
                word = []
            if t not in spec.special_ids:
                word.append(i)
        n = sum(t not in spec.special_ids for t in original)
        k = min(PRED, max(1, round(n * 0.15)))
        assert len(chosen) <= k
        ratio.append(len(chosen) / k)
    assert partial == 0
    assert words_masked > 100  # multi-piece words were masked, whole
    assert np.mean(ratio) > 0.97  # the greedy fill reaches the budget almost always


def test_truncation_matches_reference_rule():
    rng = random.Random(0)
    a, b = np.arange(100, dtype=np.int32), np.arange(1000, 1040, dtype=np.int32)
    fronts = []
    for _ in range(400):
        ta, tb = _truncate_seq_pair(a, b, 50, rng)
        # The longer side shrinks first, down to the other's length; then they alternate, B first.
        assert (len(ta), len(tb)) == (25, 25)
        assert ta[0] - a[0] + (a[-1] - ta[-1]) == 75 and tb[0] - b[0] + (b[-1] - tb[-1]) == 15
        assert np.all(np.diff(ta) == 1) and np.all(np.diff(tb) == 1)  # contiguous: only ends removed
        fronts.append(int(ta[0] - a[0]))
    assert abs(np.mean(fronts) - 37.5) < 1.0  # front or back with probability 1/2 each
    ta, tb = _truncate_seq_pair(a[:3], b[:3], 5, rng)
    assert (len(ta), len(tb)) == (3, 2)  # ties go to B


def test_long_sentences_are_cut_at_word_starts(tokenizer, spec):
    long_line = " ".join(["unbelievably transcendental photosynthesis"] * 40)
    doc = tokenize_document(RawDocument([long_line, "Short one."], "x", 1), tokenizer, spec, 29)
    lengths = np.diff(doc.bounds)
    assert lengths[-1] == 3 and sum(lengths[:-1]) == len(tokenizer.tokenize(long_line))
    assert max(lengths) <= 14  # parts of at most half the sequence
    for i in range(len(doc) - 1):
        assert not spec.is_subword[doc.sentence(i)[0]]  # never starts inside a word


def test_special_tokens_in_text_become_unk(tokenizer, spec):
    doc = tokenize_document(RawDocument(["a [SEP] b [CLS] [PAD] c"], "x", 1), tokenizer, spec, 100)
    assert not set(doc.ids.tolist()) & (spec.special_ids - {spec.unk_id})
    assert doc.ids.tolist().count(spec.unk_id) == 3


def test_pools_are_bounded_and_keep_two_documents(spec):
    docs = [TokenizedDocument(np.full(n, 1000 + k, np.int32), np.array([0, n // 2, n]))
            for k, n in enumerate([40, 40, 40, 40, 40])]
    pools = list(_pools(iter(docs), pool_tokens=80))
    assert [len(p) for p in pools] == [2, 3]  # the lone last document joined the previous pool
    rng = random.Random(1)
    for pool in pools:
        for i in range(len(pool)):
            for inst in create_instances_from_document(pool, i, 16, 0.1, rng, spec):
                b_token = inst.input_ids[inst.input_ids.index(spec.sep_id) + 1]
                assert b_token == pool[inst.b_document_index].ids[0]
                assert (inst.b_document_index != i) == inst.is_random_next
    halves = list(_pools(iter(docs[:1]), pool_tokens=10))  # one document: its two halves
    assert len(halves) == 1 and len(halves[0]) == 2
    assert np.array_equal(np.concatenate([h.ids for h in halves[0]]), docs[0].ids)
    assert sum(len(h) for h in halves[0]) == len(docs[0])


def test_masking_respects_the_cap(spec):
    rng = random.Random(0)
    ids = [spec.cls_id] + list(range(2000, 2300)) + [spec.sep_id, spec.pad_id]
    out, positions, labels = create_masked_lm_predictions(ids, 0.15, 20, spec, rng)
    assert len(positions) == 20 and 0 not in positions and 301 not in positions and 302 not in positions
    assert labels == [ids[p] for p in positions] and len(out) == len(ids)


@pytest.mark.slow
def test_gutenberg_throughput(shared_data, tokenizer):
    """The whole 10 MB Gutenberg corpus -> instances (static masks, dupe_factor 1). Prints the rate."""
    import glob
    import time

    files = sorted(glob.glob(str(shared_data / "pretrain" / "gutenberg" / "*.txt")))
    start = time.perf_counter()
    stats: dict = {}
    config = PretrainingDataConfig(whole_word_mask=True)
    n = sum(1 for _ in create_pretraining_instances(files, tokenizer, config, errors="replace", stats=stats))
    seconds = time.perf_counter() - start
    print(f"\n{n} instances, {stats['tokens']} pieces from 10 MB in {seconds:.1f}s "
          f"({10.06 / seconds:.2f} MB/s, {n / seconds:.0f} instances/s)")
    assert stats["documents"] == 13  # the time is printed, never asserted (CPUs differ)


def test_a_folder_is_a_corpus_of_its_files(tmp_path, tokenizer):
    from bertkit.data.corpus import expand_corpus

    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["b.txt", "a.txt", "sub/c.txt"]):
        (folder / name).write_text(f"Short text number {i}. It has two sentences.\n")
    (folder / ".hidden").write_text("not part of the corpus\n")
    files = expand_corpus([str(folder)])
    assert [f.rsplit("/", 1)[-1] for f in files] == ["a.txt", "b.txt", "c.txt"]
    stats = {}
    instances = list(create_pretraining_instances(files, tokenizer, PretrainingDataConfig(max_length=32),
                                                  fmt="prose", stats=stats))
    assert stats["documents"] == 3 and instances
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="holds no files"):
        expand_corpus([str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="missing"):
        expand_corpus([str(tmp_path / "missing")])
