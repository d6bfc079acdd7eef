"""`evaluate` runs a file in chunks and keeps only each chunk's `evaluation_rows`: the metrics (and
classify's confusion matrix) equal those of the whole file scored at once, for every task that
scores in rows, also where a document's windows or a question's choices meet a chunk boundary."""

from __future__ import annotations

import json

import pytest

from bertkit.data.classification import GLUE_COLUMNS
from bertkit.tasks import TASKS, evaluate
from bertkit.tasks.inference import load_for_inference
from tests.tasks.test_tasks import run_cli

STSB = ["--delimiter", "tab", "--no-header", "--text-column", "5", "--text-pair-column", "6", "--label-column", "4"]
GOEMOTIONS = ["--quoting", "csv", "--no-header", "--label-column", "1"]
CASES = {  # task: (training file, dev file, finetune flags, evaluate's read options)
    "classify": ("train.tsv", "dev.tsv", ["--max-length", "12", "--doc-stride", "5"], {}),
    "regression": ("stsb.csv", "stsb.csv", STSB, dict(GLUE_COLUMNS["stsb"])),
    "multilabel": ("goemotions.tsv", "goemotions.tsv", GOEMOTIONS,
                   {"quoting": "csv", "header": False, "label_column": 1}),
    "ner": ("train.conll", "dev.conll", ["--max-length", "16"], {}),  # long sentences in windows
    "multiple-choice": ("csqa.jsonl", "csqa_dev.jsonl", ["--max-length", "32"], {}),
    "embedding": ("stsb.csv", "stsb.csv", STSB + ["--loss", "cosent"], dict(GLUE_COLUMNS["stsb"])),
}


def flat(metrics: dict, prefix: str = "") -> dict:
    """{"per_class/pos/f1": 0.5, ...}: nested metrics as one level, for pytest.approx."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize("task", list(CASES))
def test_chunks_score_as_the_whole_file(task, tiny_dir, data, tmp_path):
    train, dev, flags, options = CASES[task]
    out = tmp_path / "model"
    run_cli("finetune", task, "--model", tiny_dir, "--train", data / train, "--out", out, "--max-steps", 1,
            "--batch-size", 8, "--no-xla", *flags)
    whole = evaluate(str(out), str(data / dev), TASKS, report_dir=str(tmp_path / "whole"), chunk_examples=10**6,
                     **options)
    chunked = evaluate(str(out), str(data / dev), TASKS, report_dir=str(tmp_path / "chunked"), chunk_examples=7,
                       batch_size=3, **options)
    assert flat(chunked) == pytest.approx(flat(whole), rel=1e-5, abs=1e-6)
    written = sorted(p.name for p in (tmp_path / "chunked").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert written == (["confusion_matrix.json", "confusion_matrix.png", "metrics.json"] if task == "classify"
                       else ["metrics.json"])
    if task == "classify":
        matrices = [json.loads((tmp_path / d / "confusion_matrix.json").read_text()) for d in ("whole", "chunked")]
        assert matrices[0] == matrices[1]
        loaded = load_for_inference(str(out), TASKS)
        examples = loaded.task.read(str(data / dev), labels=loaded.labels)
        assert sum(map(sum, matrices[0]["matrix"])) == len(examples)  # every example, once


@pytest.mark.parametrize("name", ["dev.tsv", "dev.csv", "dev.jsonl"])
def test_classify_files_are_read_as_evaluate_goes(tmp_path, name):
    """The first chunk comes before the reader has seen the end of the file: a bad row at the end
    is reported only when reached (by file and line), after the good rows were handed out."""
    good = [(f"text number {i}, fine", "pos" if i % 2 else "neg") for i in range(50)]
    if name.endswith(".jsonl"):
        lines = [json.dumps({"text": t, "label": y}) for t, y in good] + ['{"text": "broken"']
    else:
        sep = "," if name.endswith(".csv") else "\t"
        lines = [f'"{t}"{sep}{y}' if sep == "," else f"{t}{sep}{y}" for t, y in good] + [f"a{sep}b{sep}c"]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chunks = TASKS["classify"](header=False).read_chunks(str(path), ["neg", "pos"], 20)
    first = next(chunks)
    assert [e.text for e in first] == [t for t, _ in good[:20]] and first[0].source == f"{path}:1"
    assert [e.text for e in next(chunks)] == [t for t, _ in good[20:40]]
    with pytest.raises(ValueError, match=f"{name}:51: "):
        next(chunks)
    with pytest.raises(ValueError, match=r"dev\.tsv:3: unknown label 'maybe'"):
        bad = tmp_path / "dev.tsv"
        bad.write_text("a\tpos\nb\tneg\nc\tmaybe\n", encoding="utf-8")
        next(TASKS["classify"](header=False).read_chunks(str(bad), ["neg", "pos"], 20))


@pytest.mark.parametrize("name", ["dev.conll", "dev.jsonl"])
def test_ner_files_are_read_as_evaluate_goes(tmp_path, name):
    sentences = [[f"Word{i}", "in", "Paris"] for i in range(30)]
    tags = ["O", "O", "B-LOC"]
    if name.endswith(".jsonl"):
        text = "\n".join(json.dumps({"tokens": s, "tags": tags}) for s in sentences) + "\n{\"tokens\": [\"x\"]}\n"
        bad_line = 31
    else:
        text = "".join("".join(f"{w} {t}\n" for w, t in zip(s, tags)) + "\n" for s in sentences) + "bad row here\n"
        bad_line = 30 * 4 + 1
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    chunks = TASKS["ner"]().read_chunks(str(path), None, 12)
    first = next(chunks)
    assert [e.words for e in first] == sentences[:12] and first[1].tags == tags
    assert len(next(chunks)) == 12
    with pytest.raises(ValueError, match=f"{name}:{bad_line}: "):
        next(chunks)
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.conll: no sentences"):
        next(TASKS["ner"]().read_chunks(str(empty), None, 12))


@pytest.mark.parametrize("name", ["dev.jsonl", "dev.csv"])
def test_multiple_choice_files_are_read_as_evaluate_goes(tmp_path, name):
    rows = [(f"Question {i}?", ["yes", "no", "maybe"], i % 3) for i in range(30)]
    if name.endswith(".jsonl"):
        text = "\n".join(json.dumps({"question": q, "choices": c, "label": y}) for q, c, y in rows) + "\n{oops\n"
        bad_line = 31
    else:
        text = "sent1,sent2,ending0,ending1,ending2,label\n" + "".join(
            f"{q},,{c[0]},{c[1]},{c[2]},{y}\n" for q, c, y in rows) + "too,few\n"
        bad_line = 32
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    chunks = TASKS["multiple-choice"]().read_chunks(str(path), None, 12)
    first = next(chunks)
    assert [e.label for e in first] == [y for _, _, y in rows[:12]] and len(first[0].choices) == 3
    assert len(next(chunks)) == 12
    with pytest.raises(ValueError, match=f"{name}:{bad_line}: "):
        next(chunks)
