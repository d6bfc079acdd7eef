"""The TFLite runtime of predict/evaluate: the same predictions as TensorFlow for every task, a cache
keyed by the weights, and a clear fallback or error when conversion is impossible."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from bertkit.tasks import TASKS, evaluate
from bertkit.tasks.inference import load_for_inference, predict, run_model
from bertkit.tasks.lite import cache_dir, model_digest


@pytest.fixture(scope="module")
def models(tmp_path_factory, minilm_path):
    import keras

    from bertkit.config import BertConfig
    from bertkit.model.models import build_task_model
    from bertkit.pretrained import save_model

    keras.utils.set_random_seed(3)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, initializer_range=0.2)
    root = tmp_path_factory.mktemp("lite")
    labels = {"classify": ["negative", "neutral", "positive"], "ner": ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"],
              "qa": None}
    out = {}
    for task, names in labels.items():
        model = build_task_model(task, config, num_labels=len(names) if names else 2)
        out[task] = str(root / task)
        save_model(model, out[task], tokenizer_dir=minilm_path, labels=names)
    return out


@pytest.fixture(scope="module")
def lines(shared_data):
    sst = [line.split("\t")[0] for line in (shared_data / "sst2" / "dev.tsv").read_text().splitlines()[1:41]]
    conll = (shared_data / "conll2003" / "eng.testa").read_text().split("\n\n")[1:41]
    ner = [" ".join(row.split()[0] for row in block.splitlines() if row.strip()) for block in conll]
    squad = json.loads((shared_data / "squad" / "dev-v1.1.articles00-37.json").read_text())
    paragraph = squad["data"][0]["paragraphs"][0]
    qa = [f"{q['question']}\t{paragraph['context']}" for q in paragraph["qas"]]
    return {"classify": sst, "ner": ner, "qa": qa}


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_runtimes_give_the_same_predictions(models, lines, task):
    lite = load_for_inference(models[task], TASKS, runtime="tflite")
    tf_ = load_for_inference(models[task], TASKS, runtime="tensorflow")
    assert (lite.runtime, tf_.runtime) == ("tflite", "tensorflow")
    features = lite.task.featurize(lite.task.examples_from_lines(lines[task]), lite.tokenizer, None)
    got = run_model(lite.forward, features, lite.task.per_token)
    want = run_model(tf_.forward, features, tf_.task.per_token)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=2e-5, rtol=1e-5)
    a = predict(models[task], lines[task], TASKS, runtime="tflite")
    b = predict(models[task], lines[task], TASKS, runtime="tensorflow")
    key = {"classify": "label", "ner": "entities", "qa": "answer"}[task]
    assert [r[key] for r in a] == [r[key] for r in b]


def test_cache_is_reused_and_keyed_by_the_weights(models, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "cache"))
    first = load_for_inference(models["classify"], TASKS, runtime="tflite")
    assert first.model is not None  # converted from the Keras model
    cached = list((cache_dir() / "tflite").iterdir())
    assert [p.name for p in cached] == [f"{model_digest(models['classify'])}.tflite"]

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted although the cache holds the model")

    monkeypatch.setattr("bertkit.export.tflite.tflite_flatbuffer", no_conversion)
    again = load_for_inference(models["classify"], TASKS, runtime="tflite")
    assert again.model is None and again.labels == ["negative", "neutral", "positive"]

    copy = tmp_path / "copy"
    shutil.copytree(models["classify"], copy)
    assert model_digest(str(copy)) == model_digest(models["classify"])  # content, not the path
    weights = load_file(str(copy / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3
    save_file(weights, str(copy / "model.safetensors"))
    assert model_digest(str(copy)) != model_digest(models["classify"])


def test_unwritable_cache_costs_a_warning_not_the_run(models, lines, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BERTKIT_CACHE", str(blocker))  # a file: no directory can be made under it
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        records = predict(models["classify"], lines["classify"][:5], TASKS, runtime="tflite")
    assert len(records) == 5 and all(r["label"] for r in records)
    assert "could not cache the TFLite model" in caplog.text


def test_auto_falls_back_to_tensorflow_and_tflite_fails(models, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "empty"))

    def fail(*args, **kwargs):
        raise RuntimeError("'tf.SomeOp' op is neither a custom op nor a flex op")

    monkeypatch.setattr("bertkit.export.tflite.tflite_flatbuffer", fail)
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        loaded = load_for_inference(models["ner"], TASKS, runtime="auto")
    assert loaded.runtime == "tensorflow"
    assert "TFLite could not convert" in caplog.text and "tf.SomeOp" in caplog.text
    with pytest.raises(RuntimeError, match="tf.SomeOp"):
        load_for_inference(models["ner"], TASKS, runtime="tflite")
    with pytest.raises(ValueError, match="--runtime must be one of"):
        load_for_inference(models["ner"], TASKS, runtime="onnx")


def test_evaluate_scores_the_same_on_both_runtimes(models, shared_data, tmp_path):
    conll = (shared_data / "conll2003" / "eng.testa").read_text().split("\n\n")[1:31]
    data = tmp_path / "dev.conll"
    data.write_text("\n\n".join(conll) + "\n")
    lite = evaluate(models["ner"], str(data), TASKS, runtime="tflite")
    graph = evaluate(models["ner"], str(data), TASKS, runtime="tensorflow")
    assert lite == graph


NO_TENSORFLOW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tensorflow_text"):
            raise ImportError("TensorFlow imported by predict: " + name)
sys.meta_path.insert(0, Block())
from bertkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_predict_on_a_cached_model_never_imports_tensorflow(models, lines, tmp_path, monkeypatch):
    """Importing TensorFlow takes seconds; a converted model must run without it."""
    import subprocess
    import sys

    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "cache"))
    load_for_inference(models["classify"], TASKS, runtime="tflite")  # converts and caches
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(lines["classify"][:8] + [""] + lines["classify"][8:10]) + "\n")
    out = tmp_path / "out.jsonl"
    run = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, "predict", "--model", models["classify"], str(texts),
                          "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want = predict(models["classify"], texts.read_text().split("\n")[:-1], TASKS, runtime="tensorflow")
    assert [r["label"] for r in got] == [r["label"] for r in want] and got[8]["label"] is None


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_int8_stays_close_to_fp32(models, lines, task, tmp_path, monkeypatch):
    """Dynamic-range int8 weights: a separate cache entry about 4x smaller, outputs near fp32's
    (the error bound is relative to the spread of the fp32 outputs: int8 rounding of each weight
    is 1/254 of its row's range)."""
    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "cache"))
    fp32 = load_for_inference(models[task], TASKS, runtime="tflite")
    int8 = load_for_inference(models[task], TASKS, runtime="auto", precision="int8")
    assert (int8.runtime, int8.precision, fp32.precision) == ("tflite", "int8", "fp32")
    sizes = {p.stat().st_size for p in (cache_dir() / "tflite").iterdir()}
    assert len(sizes) == 2 and max(sizes) > 3 * min(sizes)
    features = fp32.task.featurize(fp32.task.examples_from_lines(lines[task]), fp32.tokenizer, None)
    want = run_model(fp32.forward, features, fp32.task.per_token)
    got = run_model(int8.forward, features, int8.task.per_token)
    for name in want:
        real = want[name] > -1000  # not the positions QA masks with a large negative logit
        spread = want[name][real].max() - want[name][real].min()
        error = np.abs(got[name] - want[name])[real].max()
        assert 0 < error <= 0.05 * spread, name


def test_int8_runs_on_tflite_only(models):
    with pytest.raises(ValueError, match="--precision int8 runs on the TFLite runtime"):
        load_for_inference(models["classify"], TASKS, runtime="tensorflow", precision="int8")
    with pytest.raises(ValueError, match="--precision must be one of fp32, int8"):
        load_for_inference(models["classify"], TASKS, precision="fp16")


@pytest.mark.parametrize("int8_units", [True, False])
def test_auto_precision_follows_the_cpu(models, lines, int8_units, tmp_path, monkeypatch):
    """The default precision "auto" loads exactly what the explicit choice for this CPU loads."""
    import bertkit.cpu

    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(bertkit.cpu.PRECISION_ENV)
    monkeypatch.setattr(bertkit.cpu, "has_int8_dot", lambda: int8_units)
    auto = load_for_inference(models["classify"], TASKS)
    want = "int8" if int8_units else "fp32"
    assert (auto.runtime, auto.precision) == ("tflite", want)
    explicit = load_for_inference(models["classify"], TASKS, precision=want)
    features = auto.task.featurize(auto.task.examples_from_lines(lines["classify"]), auto.tokenizer, None)
    np.testing.assert_array_equal(run_model(auto.forward, features, False)["logits"],
                                  run_model(explicit.forward, features, False)["logits"])
    assert load_for_inference(models["classify"], TASKS, runtime="tensorflow").precision == "fp32"


@pytest.mark.parametrize("task, precision", [("classify", "fp32"), ("ner", "fp32"), ("ner", "int8")])
def test_batches_split_into_calls_give_the_one_call_outputs(models, lines, task, precision, tmp_path, monkeypatch):
    """A batch over `tokens_per_call` positions runs as several interpreter calls of whole rows,
    shared among interpreters that run side by side; the rows come back in order with the outputs
    of one call over the whole batch (int8 activations are quantized per row, so the pieces do not
    change them either)."""
    from bertkit.tasks.lite import LiteForward, cached_model_path

    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "cache"))
    loaded = load_for_inference(models[task], TASKS, runtime="tflite", precision=precision)
    features = loaded.task.featurize(loaded.task.examples_from_lines(lines[task][:13]), loaded.tokenizer, None)
    width = int(features["attention_mask"].sum(-1).max())
    batch = {k: np.asarray(features[k])[:, :width] for k in ("input_ids", "token_type_ids", "attention_mask")}
    flatbuffer = cached_model_path(models[task], precision=precision).read_bytes()
    whole = LiteForward(flatbuffer, threads=2, tokens_per_call=10 ** 9)
    calls = []  # (interpreter, its threads, rows) per call
    split = LiteForward(flatbuffer, threads=2, tokens_per_call=3 * width, workers=2)
    new_runner = split.new_runner

    def counting_runner(threads):
        runner = new_runner(threads)
        return lambda **kw: calls.append((id(runner), threads, len(kw["input_ids"]))) or runner(**kw)
    split.new_runner = counting_runner
    want, got = whole(batch), split(batch)
    # 13 rows, 3 per call: 5 calls, rounded up to 6 (3 per interpreter) of 2-3 rows
    assert sorted(rows for _, _, rows in calls) == [2, 2, 2, 2, 2, 3]
    assert len({runner for runner, _, _ in calls}) == 2 and {threads for _, threads, _ in calls} == {1}
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, rtol=1e-6)


def test_a_failing_call_raises_once_every_interpreter_is_done():
    """An error in one share of a split batch is raised only after the other interpreters have
    finished theirs, so the next batch never finds an interpreter still busy."""
    import time

    from bertkit.tasks.lite import LiteForward

    forward = LiteForward(b"", threads=2, tokens_per_call=2, workers=2)
    done = []

    def new_runner(threads):
        def run(**inputs):
            first = int(inputs["input_ids"][0, 0])
            if first == 0:  # the first share (this thread's) fails at once
                raise ValueError("bad row")
            time.sleep(0.2)
            done.append(first)
            return {"logits": inputs["input_ids"].astype(np.float32)}
        return run
    forward.new_runner = new_runner
    ids = np.arange(8, dtype=np.int32).reshape(4, 2)  # 4 calls of one row, 2 per interpreter
    with pytest.raises(ValueError, match="bad row"):
        forward({"input_ids": ids, "token_type_ids": ids, "attention_mask": ids})
    assert done == [4, 6]


def test_one_worker_splits_on_the_single_call_interpreter():
    """With one worker (e.g. one CPU) a split batch runs its calls in turn on the interpreter that
    single-call batches use: no second copy of the packed weights."""
    from bertkit.tasks.lite import LiteForward

    forward = LiteForward(b"", threads=1, tokens_per_call=2)
    made, calls = [], []

    def new_runner(threads):
        made.append(threads)
        return lambda **inputs: calls.append(len(inputs["input_ids"])) or {"logits": inputs["input_ids"] * 1.0}
    forward.new_runner = new_runner
    ids = np.arange(8, dtype=np.int32).reshape(4, 2)
    np.testing.assert_array_equal(forward({"input_ids": ids, "token_type_ids": ids, "attention_mask": ids})["logits"], ids)
    np.testing.assert_array_equal(forward({k: ids[:1] for k in ("input_ids", "token_type_ids", "attention_mask")})["logits"],
                                  ids[:1])
    assert made == [1] and calls == [1, 1, 1, 1, 1]
