"""`bertkit predict` writes one output row per input line, in order: separators that
str.splitlines() breaks on stay inside their line, blank lines keep their row, and the length-sorted
batching gives each line the prediction it gets alone."""

import io
import json
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertkit.cli import main as cli
from bertkit.data.common import iter_text_lines
from bertkit.tasks import TASKS
from bertkit.tasks.inference import iter_predictions, load_for_inference, run_model

# U+2028, U+0085, form feed and U+001C inside lines: str.splitlines() splits on each of them.
LINES = ["a charming\u2028and affecting journey", "bleak\u0085and desperate", "", "one\x0cform feed",
         "group\x1cseparator and more words", "   ", "the last line"]


def run_cli(*args) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli([str(a) for a in args]) == 0
    return buf.getvalue()


@pytest.fixture(scope="module")
def classifier(tiny_dir, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "model"
    run_cli("finetune", "classify", "--model", tiny_dir, "--train", data / "train.tsv", "--out", out,
            "--max-steps", 2, "--batch-size", 8, "--no-xla")
    return out


def alone(model_dir, text):
    return iter_predictions(str(model_dir), [text], TASKS).__next__()


def test_one_row_per_line_with_separators_and_blank_lines(classifier, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(("\n".join(LINES) + "\n").encode("utf-8"))
    rows = [json.loads(line) for line in run_cli("predict", "--model", classifier, path).splitlines()]
    assert len(rows) == len(LINES)
    for text, row in zip(LINES, rows):
        if text.strip():
            assert row["label"] == alone(classifier, text)["label"]
            np.testing.assert_allclose(row["probabilities"], alone(classifier, text)["probabilities"], atol=1e-5)
        else:
            assert row == {"label": None, "probabilities": None}
    # `first\n\nthird\n`: three lines, three rows, the middle one blank
    path.write_text("first\n\nthird\n")
    rows = [json.loads(line) for line in run_cli("predict", "--model", classifier, path).splitlines()]
    assert len(rows) == 3 and rows[1]["label"] is None and rows[2]["label"] is not None


def test_stdin_output_file_and_crlf(classifier, tmp_path, monkeypatch):
    raw = "\ufefffirst line\r\n\r\nsecond\u2028line"  # BOM, CRLF, a blank line, no final newline
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw.encode("utf-8"))))
    out = tmp_path / "out.jsonl"
    run_cli("predict", "--model", classifier, "--output", out, "--batch-size", 1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and rows[1]["label"] is None
    assert rows[0]["probabilities"] == pytest.approx(alone(classifier, "first line")["probabilities"], abs=1e-5)
    assert rows[2]["probabilities"] == pytest.approx(alone(classifier, "second\u2028line")["probabilities"], abs=1e-5)


def test_bad_utf8_names_the_line(classifier, tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nalso fine\nbroken \xff byte\n")
    assert cli(["predict", "--model", str(classifier), str(path)]) == 2
    assert f"{path}:3: not valid UTF-8" in capsys.readouterr().err


def test_iter_text_lines_splits_on_newline_only():
    raw = b"\xef\xbb\xbfa\x1cb\r\n\n\xe2\x80\xa8c\x0cd\n\xc2\x85"
    assert list(iter_text_lines(io.BytesIO(raw), "f")) == [
        ("f:1", "a\x1cb"), ("f:2", ""), ("f:3", "\u2028c\x0cd"), ("f:4", "\u0085")]


def test_sorted_batches_put_outputs_back_in_feature_order(classifier):
    """run_model sorts rows by length; every batch size gives the rows their unbatched outputs, on
    both runtimes (TFLite resizes its tensors for each batch shape)."""
    loaded = load_for_inference(str(classifier), TASKS, runtime="tensorflow")
    task, model = loaded.task, loaded.model
    texts = ["short", "a much longer text with many more words than the others in this list", "mid size text",
             "x", "another fairly long sentence that needs some room", ""]
    features = task.featurize(task.examples_from_lines(texts), loaded.tokenizer, None)
    one_by_one = np.concatenate([run_model(model, {k: v[i:i + 1] for k, v in features.items()}, False)["logits"]
                                 for i in range(len(texts))])
    lite = load_for_inference(str(classifier), TASKS, runtime="tflite")
    assert lite.runtime == "tflite"
    for batch_size in (1, 2, 4, 32):
        for forward in (model, lite.forward):
            np.testing.assert_allclose(run_model(forward, features, False, batch_size=batch_size)["logits"],
                                       one_by_one, atol=1e-5)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "\t", "\u2028", "\x1c", "\x85"])),
                      max_size=12),
       chunk=st.integers(1, 5), batch=st.integers(1, 4))
def test_any_unicode_lines_stay_aligned(classifier, lines, chunk, batch):
    # "\n" ends a line; a final "\r" (CRLF) and a BOM at the start are not text; "\t" separates pairs.
    lines = [line.replace("\n", " ").replace("\r", " ").replace("\t", " ").replace("\ufeff", " ") for line in lines]
    raw = "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return  # lone surrogates cannot be written as UTF-8 text
    read = list(iter_text_lines(io.BytesIO(raw), "f"))
    assert [text for _, text in read] == lines
    rows = list(iter_predictions(str(classifier), read, TASKS, chunk_lines=chunk, batch_size=batch))
    assert len(rows) == len(read)
    for (_, text), row in zip(read, rows):
        assert (row["label"] is None) == (not text.strip())
