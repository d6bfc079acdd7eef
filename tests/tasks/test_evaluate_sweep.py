"""Property sweep (hypothesis) through evaluate's readers: random Unicode cells and words, random
blank lines and batch sizes. Every written row is read back as one example with its text unchanged,
and `evaluate` scores exactly those examples, in order, without an error from inside the model."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertkit.cli import main as cli
from bertkit.tasks import TASKS
from bertkit.tasks.inference import evaluate, load_for_inference, run_model

# Characters a TSV cell / CoNLL word cannot hold: the line and field separators, the BOM (stripped
# at the start of a file) and lone surrogates (not writable as UTF-8).
CELL_TEXT = st.text(st.characters(exclude_characters="\n\r\t\ufeff", exclude_categories=["Cs"]), max_size=30)
WORD = st.text(st.characters(exclude_characters="\n\r\t \ufeff", exclude_categories=["Cs"]), min_size=1,
               max_size=12).filter(lambda w: not w.startswith("-DOCSTART-"))
SWEEP = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def tiny_finetuned(task, train, tiny_dir, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp(task) / "model"
    assert cli(["finetune", task, "--model", str(tiny_dir), "--train", str(train), "--out", str(out),
                "--max-steps", "2", "--batch-size", "8", "--no-xla"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def classifier(tiny_dir, data, tmp_path_factory):
    return tiny_finetuned("classify", data / "train.tsv", tiny_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def tagger(tiny_dir, data, tmp_path_factory):
    return tiny_finetuned("ner", data / "train.conll", tiny_dir, tmp_path_factory)


@SWEEP
@given(texts=st.lists(CELL_TEXT.filter(lambda t: t.strip()), min_size=1, max_size=10),
       blank_every=st.integers(0, 4), header=st.booleans())
def test_classify_file_rows_stay_aligned(classifier, tmp_path, texts, blank_every, header):
    loaded = load_for_inference(classifier, TASKS, runtime="tflite")
    task = loaded.task
    # Gold = the label each text gets alone, so a scored row that shifted would cost accuracy.
    features = task.featurize(task.examples_from_lines(texts), loaded.tokenizer, None)
    logits = run_model(loaded.forward, features, False, batch_size=1)["logits"]
    gold = [loaded.labels[int(i)] for i in logits.argmax(-1)]
    lines = ["sentence\tlabel"] if header else []
    for i, (text, label) in enumerate(zip(texts, gold)):
        lines.append(f"{text}\t{label}")
        if blank_every and i % blank_every == 0:
            lines.append("")  # blank lines separate nothing in a TSV; they must not eat a row
    path = tmp_path / "dev.tsv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    examples = task.read(str(path), labels=loaded.labels)
    assert [e.text for e in examples] == texts
    assert evaluate(classifier, str(path), TASKS, runtime="tflite")["accuracy"] == 1.0


@SWEEP
@given(sentences=st.lists(st.lists(st.tuples(WORD, st.sampled_from(["O", "I-PER", "I-LOC", "I-ORG"])),
                                   min_size=1, max_size=8), min_size=1, max_size=6),
       sep=st.sampled_from([" ", "\t"]), blank=st.sampled_from(["", "\t", "  "]))
def test_conll_sentences_stay_aligned(tagger, tmp_path, sentences, sep, blank):
    path = tmp_path / "dev.conll"
    text = f"\n{blank}\n".join("\n".join(f"{w}{sep}{t}" for w, t in s) for s in sentences)
    path.write_bytes((text + "\n").encode("utf-8"))
    loaded = load_for_inference(tagger, TASKS, runtime="tflite")
    task = loaded.task
    examples = task.read(str(path), labels=loaded.labels)
    assert [(e.words, e.tags) for e in examples] == [([w for w, _ in s], [t for _, t in s]) for s in sentences]
    features = task.featurize(examples, loaded.tokenizer, loaded.labels)
    predicted = task.predicted_tags(examples, features, run_model(loaded.forward, features, True), loaded.labels)
    assert [len(p) for p in predicted] == [len(s) for s in sentences]
    metrics = evaluate(tagger, str(path), TASKS, runtime="tflite")
    assert all(np.isfinite(v) and 0 <= v <= 1 for k, v in metrics.items() if k.endswith("f1"))
