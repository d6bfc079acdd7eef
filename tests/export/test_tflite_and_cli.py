"""TFLite conversion of the classifier (parity with bertkit predict) and the export CLI's flags."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bertkit.cli import main


def test_tflite_classifier_matches_python(tiny_models, real_inputs, tmp_path):
    import tensorflow as tf

    from bertkit.export.tflite import export_tflite
    from bertkit.tasks import TASKS, predict
    from bertkit.tokenizer import load_tokenizer

    seq = 32  # the tiny classifier's max_length: same truncation as predict()
    path = export_tflite(tiny_models["classify"], str(tmp_path / "classify.tflite"), max_length=seq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT)
        runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
    texts = real_inputs["texts"][:12]
    want = predict(tiny_models["classify"], texts, TASKS)
    for text, w in zip(texts, want):
        e = load_tokenizer(tiny_models["classify"]).encode(text, max_length=seq, padding="max_length")
        got = runner(**{k: np.array([v], np.int32) for k, v in (
            ("input_ids", e.ids), ("token_type_ids", e.type_ids), ("attention_mask", e.attention_mask))})
        assert np.abs(got["probabilities"][0] - w["probabilities"]).max() <= 1e-5


def test_int8_tflite_file_is_smaller_and_close(tiny_models, real_inputs, tmp_path, capsys):
    """`bertkit export --kind tflite --precision int8`: int8 weights, probabilities near fp32's."""
    import tensorflow as tf

    from bertkit.tokenizer import load_tokenizer

    seq, paths = 32, {}
    for precision in ("fp32", "int8"):
        paths[precision] = str(tmp_path / f"{precision}.tflite")
        assert main(["export", "--model", tiny_models["classify"], "--kind", "tflite", "--max-length", str(seq),
                     "--precision", precision, "--out", paths[precision]]) == 0
    with open(paths["fp32"], "rb") as a, open(paths["int8"], "rb") as b:
        assert len(a.read()) > 3 * len(b.read())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runners = {p: tf.lite.Interpreter(model_path=path).get_signature_runner() for p, path in paths.items()}
    tokenizer = load_tokenizer(tiny_models["classify"])
    diffs = []
    for text in real_inputs["texts"][:12]:
        e = tokenizer.encode(text, max_length=seq, padding="max_length")
        inputs = {k: np.array([v], np.int32) for k, v in (
            ("input_ids", e.ids), ("token_type_ids", e.type_ids), ("attention_mask", e.attention_mask))}
        got, want = (runners[p](**inputs)["probabilities"][0] for p in ("int8", "fp32"))
        diffs.append(np.abs(got - want).max())
    assert 0 < max(diffs) <= 0.02, diffs
    capsys.readouterr()
    assert main(["export", "--model", tiny_models["classify"], "--precision", "int8", "--out", str(tmp_path / "sm")]) == 2
    assert "--precision int8 applies to --kind tflite" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["ner", "qa"])
def test_tflite_token_tasks_match_tensorflow(tiny_models, tmp_path, task):
    """The [1, seq] file of a token task gives the per-token logits of the TensorFlow graph."""
    import tensorflow as tf

    from bertkit.export.tflite import export_tflite
    from bertkit.tasks import TASKS
    from bertkit.tasks.inference import load_for_inference

    loaded = load_for_inference(tiny_models[task], TASKS, runtime="tensorflow")
    seq = 24
    path = export_tflite(tiny_models[task], str(tmp_path / f"{task}.tflite"), max_length=seq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
    rng = np.random.default_rng(0)
    for length in (seq, 9, 2):
        ids = np.zeros((1, seq), np.int32)
        ids[0, :length] = rng.integers(5, loaded.config.vocab_size, length)
        inputs = {"input_ids": ids, "token_type_ids": (np.arange(seq) >= length // 2).astype(np.int32)[None] * (ids > 0),
                  "attention_mask": (ids > 0).astype(np.int32)}
        got, want = runner(**inputs), loaded.forward(inputs)
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-5)


def test_tflite_refuses_an_encoder(minilm_path, tmp_path):
    from bertkit.export.tflite import export_tflite

    with pytest.raises(ValueError, match="needs a fine-tuned model"):
        export_tflite(minilm_path, str(tmp_path / "encoder.tflite"))


@pytest.mark.parametrize("argv, kind, options", [
    (["--kind", "encoder", "--pooling", "none", "--max-length", "64"], "encoder",
     {"max_length": 64, "pooling": None, "normalize": False}),
    (["--kind", "encoder", "--normalize"], "encoder", {"max_length": None, "pooling": "auto", "normalize": True}),
    (["--kind", "encoder", "--pooling", "cls"], "encoder", {"max_length": None, "pooling": "cls", "normalize": False}),
    (["--kind", "preprocessor", "--max-length", "64"], "preprocessor", {"max_length": 64}),
    (["--pair", "--version", "3", "--no-verify"], "auto",
     {"max_length": None, "pair": True, "pooling": "auto", "normalize": False}),
])
def test_export_cli_flags(monkeypatch, capsys, tmp_path, argv, kind, options):
    import bertkit.export as export

    calls = []
    def fake_export(model, out, kind, **kw):
        calls.append((model, out, kind, kw))
        return out + "/1"

    monkeypatch.setattr(export, "export_model", fake_export)
    assert main(["export", "--model", str(tmp_path), "--out", "o", *argv]) == 0  # an existing path, not a Hub name
    model, out, k, kw = calls[0]
    assert (model, out, k) == (str(tmp_path), "o", kind)
    assert {key: kw[key] for key in options} == options
    assert kw["verify"] == ("--no-verify" not in argv) and kw["version"] == (3 if "--version" in argv else None)
    assert "exported to o/1" in capsys.readouterr().out


def test_export_cli_reports_bad_input(capsys, tmp_path):
    assert main(["export", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "bertkit export: error:" in capsys.readouterr().err
