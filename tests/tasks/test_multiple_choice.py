"""Multiple choice (CommonsenseQA, SWAG layout): the readers on the real file and their quirks, the
featurizer against HF's tokenizer, and a fine-tuned model whose logits transformers'
BertForMultipleChoice, both runtimes and the SavedModel reproduce; predict keeps one row per line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertkit import load_tokenizer, save_model
from bertkit.config import BertConfig
from bertkit.model.encoder import BertEncoder
from bertkit.tasks import TASKS, evaluate, predict
from bertkit.tasks.inference import load_for_inference, run_model
from tests.tasks.test_tasks import run_cli

CSQA = "commonsenseqa/train_rand_split.jsonl"


def test_reads_the_real_commonsenseqa_file(shared_data):
    examples = TASKS["multiple-choice"]().read(str(shared_data / CSQA), train=True)
    assert len(examples) == 9741 and {len(e.choices) for e in examples} == {5}
    assert np.bincount([e.label for e in examples]).tolist() == [1909, 1973, 1946, 1985, 1928]
    first = json.loads((shared_data / CSQA).read_text(encoding="utf-8").splitlines()[0])
    assert examples[0].context == first["question"]["stem"]
    assert examples[0].choices == tuple(c["text"] for c in first["question"]["choices"])
    assert examples[0].label == ord(first["answerKey"]) - ord("A")
    # Quirks: duplicate choices are kept (always 5-way); the stem with a TAB keeps it.
    assert sum(len(set(e.choices)) == 4 for e in examples) == 122
    assert any("\t" in e.context for e in examples)


def test_other_layouts_and_errors(tmp_path):
    task = TASKS["multiple-choice"]()
    hf = {"question": "Where?", "choices": {"label": ["A", "B", "C"], "text": ["x", "y", "z"]}, "answerKey": "C"}
    plain = {"question": "Which?", "choices": ["p", "q"], "label": 1}
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(hf) + "\n\n" + json.dumps(plain) + "\n")
    got = task.read(str(path))
    assert [(e.context, e.choices, e.label) for e in got] == [("Where?", ("x", "y", "z"), 2), ("Which?", ("p", "q"), 1)]
    with pytest.raises(ValueError, match=r"mixed.jsonl:3: 2 choices, but .*mixed.jsonl:1 has 3"):
        task.read(str(path), train=True)
    swag = tmp_path / "swag.csv"
    swag.write_text('video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n'
                    'v1,0,"x","Someone opens a door.","He","gold","walks in.","flies, away.","sings.","sleeps.",0\n')
    (e,) = task.read(str(swag))
    assert e.context == "Someone opens a door." and e.choices[1] == "He flies, away." and e.label == 0
    cases = {'{"question": "q", "choices": ["a", "b"], "label": 5}\n': r"bad.jsonl:1: answer 5 names choice 5",
             '{"question": "q", "choices": ["a"]}\n': r"bad.jsonl:1: 1 choice\(s\)",
             '{"question": "q", "choices": ["a", "b"], "label": 0}\n{"question": "r", "choices": ["a", "b"]}\n':
                 r"bad.jsonl:2: no answer",
             '{"question": "q", "choices": ["a", "b"]\n': r"bad.jsonl:1: not valid JSON",
             '{"choices": ["a", "b"]}\n': r"bad.jsonl:1: no question text"}
    bad = tmp_path / "bad.jsonl"
    for text, message in cases.items():
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            task.read(str(bad))
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"wrong.csv:1: a multiple-choice CSV needs SWAG's columns"):
        task.read(str(wrong))


def test_features_equal_hf_tokenizer_pairs(shared_data, minilm_path):
    transformers = pytest.importorskip("transformers")
    task = TASKS["multiple-choice"](max_length=24)  # short, so real questions get truncated
    examples = task.read(str(shared_data / CSQA))[:40]
    features = task.featurize(examples, load_tokenizer(minilm_path), None)
    hf = transformers.BertTokenizerFast.from_pretrained(minilm_path)
    for i, e in enumerate(examples):
        enc = hf([e.context] * len(e.choices), list(e.choices), truncation="longest_first", max_length=24,
                 padding="max_length")
        np.testing.assert_array_equal(features["input_ids"][i], enc["input_ids"])
        np.testing.assert_array_equal(features["token_type_ids"][i], enc["token_type_ids"])
        np.testing.assert_array_equal(features["attention_mask"][i], enc["attention_mask"])
    assert features["labels"].tolist() == [e.label for e in examples]
    assert (features["input_ids"][:, :, -1] != 0).any()  # some rows were cut at max_length


@pytest.fixture(scope="module")
def csqa_model(minilm_path, data, tmp_path_factory):
    # Weights drawn 10x wider than BERT's 0.02, so that the choices' logits are spread out and a
    # parity check means something (a tiny 0.02 model scores every choice within 1e-4).
    init = tmp_path_factory.mktemp("csqa_init")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, initializer_range=0.2)
    save_model(BertEncoder(config).build_weights(), str(init), tokenizer_dir=minilm_path)
    out = tmp_path_factory.mktemp("csqa") / "model"
    run_cli("finetune", "multiple-choice", "--model", init, "--train", data / "csqa.jsonl", "--dev",
            data / "csqa_dev.jsonl", "--out", out, "--epochs", 1, "--batch-size", 8, "--max-length", 48)
    return out


def test_transformers_and_both_runtimes_give_the_same_logits(csqa_model, data):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = json.loads((csqa_model / "config.json").read_text())
    assert config["architectures"] == ["BertForMultipleChoice"] and config["bertkit_task"] == "multiple-choice"
    hf = transformers.BertForMultipleChoice.from_pretrained(str(csqa_model)).eval()
    tf_run = load_for_inference(str(csqa_model), TASKS, runtime="tensorflow")
    lite_run = load_for_inference(str(csqa_model), TASKS, runtime="tflite")
    examples = tf_run.task.read(str(data / "csqa_dev.jsonl"))
    features = tf_run.task.featurize(examples, tf_run.tokenizer, None)
    with torch.no_grad():
        want = hf(**{k: torch.tensor(features[k], dtype=torch.long)
                     for k in ("input_ids", "token_type_ids", "attention_mask")}).logits.numpy()
    assert want.shape == (40, 5) and np.ptp(want) > 1e-3
    for loaded in (tf_run, lite_run):
        got = run_model(loaded.forward, features, False, batch_size=7)["logits"]
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=loaded.runtime)
    accuracy = np.mean(want.argmax(-1) == features["labels"])
    assert evaluate(str(csqa_model), str(data / "csqa_dev.jsonl"), TASKS)["accuracy"] == pytest.approx(accuracy)


def test_predict_keeps_lines_and_mixed_choice_counts(csqa_model, tmp_path):
    lines = [json.dumps({"question": "Where do fish live?", "choices": ["water", "sky", "desert"]}),
             "",
             "What do you write with?\tpen\tcloud",
             json.dumps({"question": {"stem": "Pick one", "choices": [{"label": "B", "text": "b"},
                                                                       {"label": "A", "text": "a"}]}})]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    rows = [json.loads(r) for r in run_cli("predict", "--model", csqa_model, path).splitlines()]
    assert len(rows) == 4 and rows[1] == {"label": None, "choice": None, "probabilities": None}
    assert [len(r["probabilities"]) for r in rows if r["probabilities"]] == [3, 2, 2]
    assert rows[3]["choice"] in ("a", "b")
    for i in (0, 2, 3):  # padding the 2-choice questions to 3 changes none of their numbers
        alone = predict(str(csqa_model), [lines[i]], TASKS)[0]
        np.testing.assert_allclose(rows[i]["probabilities"], alone["probabilities"], atol=1e-5)
        assert rows[i]["choice"] == alone["choice"]
    with pytest.raises(ValueError, match=r"<input>:1: 1 choice\(s\)"):
        predict(str(csqa_model), ["only a question\tone"], TASKS)


def test_export_serves_questions_with_choices(csqa_model, data, tmp_path):
    import tensorflow as tf

    from bertkit.export import export_model

    saved = export_model(str(csqa_model), str(tmp_path / "export"))
    fn = tf.saved_model.load(saved).signatures["serving_default"]
    loaded = load_for_inference(str(csqa_model), TASKS, runtime="tensorflow")
    examples = loaded.task.read(str(data / "csqa_dev.jsonl"))[:12]
    want = run_model(loaded.forward, loaded.task.featurize(examples, loaded.tokenizer, None), False)["logits"]
    out = fn(question=tf.constant([e.context for e in examples]), choices=tf.constant([list(e.choices) for e in examples]))
    np.testing.assert_allclose(out["logits"].numpy(), want, atol=2e-5)
    assert out["label_id"].numpy().tolist() == want.argmax(-1).tolist()
    empty = fn(question=tf.constant([], tf.string), choices=tf.zeros([0, 5], tf.string))
    assert empty["probabilities"].shape == (0, 5)

    # The app file: int32 [1, choices, seq_length] inputs, any number of choices.
    from ai_edge_litert.interpreter import Interpreter

    from bertkit.export.tflite import export_tflite

    features = loaded.task.featurize(examples[:1], loaded.tokenizer, None)
    runner = Interpreter(model_path=export_tflite(str(csqa_model), str(tmp_path / "mc.tflite"), max_length=48)
                         ).get_signature_runner("serving_default")
    lite = runner(**{k: features[k][:, :, :48].astype(np.int32) for k in ("input_ids", "token_type_ids",
                                                                           "attention_mask")})
    np.testing.assert_allclose(lite["logits"], want[:1], atol=2e-5)


def test_serve_answers_questions_with_choices(csqa_model, tmp_path):
    from fastapi.testclient import TestClient

    from bertkit.export import export_model
    from bertkit.export.runtime import Predictor
    from bertkit.serve import create_app

    predictor = Predictor.load(export_model(str(csqa_model), str(tmp_path / "export"), verify=False))
    questions = ["Where do fish live?", "What do you write with?"]
    choices = [["water", "sky", "desert"], ["pen", "cloud"]]
    with TestClient(create_app(predictor)) as client:
        got = client.post("/v1/predict", json={"questions": questions, "choices": choices}).json()["predictions"]
        same = client.post("/v1/predict", json={"instances": [{"question": q, "choices": c}
                                                              for q, c in zip(questions, choices)]}).json()
        bad = client.post("/v1/predict", json={"questions": ["q"], "choices": [["only one"]]})
    assert same["predictions"] == got
    assert bad.status_code == 422 and "at least 2 strings" in bad.json()["error"]
    lines = [json.dumps({"question": q, "choices": c}) for q, c in zip(questions, choices)]
    for row, want in zip(got, predict(str(csqa_model), lines, TASKS)):
        assert row["choice"] == want["choice"] and len(row["probabilities"]) == len(want["probabilities"])
        np.testing.assert_allclose(row["probabilities"], want["probabilities"], atol=1e-5)
    # The model directory itself is served through the engine (TFLite): `predict`'s answers.
    engine = Predictor.load(str(csqa_model))
    assert engine.metadata["runtime"] == "tflite"
    with TestClient(create_app(engine)) as client:
        direct = client.post("/v1/predict", json={"questions": questions, "choices": choices}).json()["predictions"]
    assert direct == predict(str(csqa_model), lines, TASKS)
