"""BertTokenClassifier / BertQuestionAnswerer / BertMultipleChoice: Keras fit on Python data gives the
fine-tuning engine's weights on the same batches; what they save, transformers loads with the same
logits; their predictions and scores equal `bertkit predict` / `evaluate` on the saved model; bad
input gets one clear error. Real data: CoNLL-2003, SQuAD v1.1 and 2.0, CommonsenseQA."""

import json

import numpy as np
import pytest

LR = 1e-3  # a tiny random model: a rate at which 2 epochs move the weights visibly


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    """Small real training files for the engine, and the same examples as Python data."""
    from bertkit.data.multiple_choice import read_multiple_choice_file
    from bertkit.data.ner import read_conll
    from bertkit.data.squad import read_squad

    root = tmp_path_factory.mktemp("data")
    # CoNLL: 24 sentences of 5-30 words (one window each at 128 pieces).
    sentences, block = [], []
    for line in (shared_data / "conll2003" / "eng.train").read_text(encoding="utf-8").splitlines():
        if line.strip():
            if not line.startswith("-DOCSTART-"):
                block.append(line)
            continue
        if 5 <= len(block) <= 30:
            sentences.append(block)
        block = []
        if len(sentences) == 24:
            break
    (root / "ner.conll").write_text("\n\n".join("\n".join(b) for b in sentences) + "\n", encoding="utf-8")
    # SQuAD v1.1: the first 10 questions of the first article; SQuAD 2.0: 12 questions, some unanswerable.
    squad = json.loads((shared_data / "squad" / "dev-v1.1.articles00-37.json").read_text(encoding="utf-8"))
    paragraph = squad["data"][0]["paragraphs"][0]
    paragraph["qas"] = paragraph["qas"][:10]
    (root / "squad.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": [paragraph]}]}),
                                     encoding="utf-8")
    squad2 = json.loads((shared_data / "squad2" / "dev-v2.0-cs224n.articles00-09_13.json").read_text(encoding="utf-8"))
    paragraph2 = squad2["data"][0]["paragraphs"][0]
    paragraph2["qas"] = paragraph2["qas"][:12]
    (root / "squad2.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": [paragraph2]}]}),
                                      encoding="utf-8")
    # CommonsenseQA: 16 questions of 5 choices.
    rows = (shared_data / "commonsenseqa" / "train_rand_split.jsonl").read_text(encoding="utf-8").splitlines()[:16]
    (root / "csqa.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")

    ner = read_conll(root / "ner.conll")
    qa = read_squad(root / "squad.json")
    qa2 = read_squad(root / "squad2.json")
    mc = read_multiple_choice_file(root / "csqa.jsonl")
    return {
        "root": root,
        "ner": ([e.words for e in ner], [e.tags for e in ner]),
        "qa": (([e.question for e in qa], [e.context for e in qa]),
               [[{"text": a.text, "answer_start": a.start} for a in e.answers] for e in qa]),
        "qa2": (([e.question for e in qa2], [e.context for e in qa2]),
                [[{"text": a.text, "answer_start": a.start} for a in e.answers] if not e.is_impossible else None
                 for e in qa2]),
        "mc": (([e.context for e in mc], [list(e.choices) for e in mc]), [e.label for e in mc]),
    }


TASK_SETUP = {
    # task: (class name, engine file, task options, batch size, data key)
    "ner": ("BertTokenClassifier", "ner.conll", {"max_length": 128}, 8, "ner"),
    "qa": ("BertQuestionAnswerer", "squad.json", {"max_length": 128, "doc_stride": 64}, None, "qa"),
    "multiple-choice": ("BertMultipleChoice", "csqa.jsonl", {"max_length": 64}, 8, "mc"),
}


@pytest.fixture(scope="module")
def starts(tmp_path_factory, tiny_dir, data):
    """Per task, a tiny model with that task's head, saved: the engine and Keras start from it."""
    import bertkit
    from bertkit.data.ner import infer_tag_list, read_conll

    out = {}
    for task in TASK_SETUP:
        labels = infer_tag_list(read_conll(data["root"] / "ner.conll")) if task == "ner" else None
        path = tmp_path_factory.mktemp(f"start_{task}")
        bertkit.save_model(bertkit.load_model(tiny_dir, task=task, labels=labels), str(path), tokenizer_dir=tiny_dir)
        out[task] = str(path)
    return out


def _weights(model):
    return {w.path.split("/", 1)[1]: np.asarray(w) for w in model.weights}


@pytest.mark.parametrize("task", list(TASK_SETUP))
def test_keras_fit_gives_the_engine_weights(task, tmp_path, starts, data):
    """2 epochs, dropout off, the same seed: the same batches in the same order, the same updates."""
    import keras

    import bertkit
    from bertkit.tasks import TASKS, FinetuneOptions, finetune

    name, file, options, batch_size, key = TASK_SETUP[task]
    x, y = data[key]
    cls = getattr(bertkit, name)
    model = cls.from_pretrained(starts[task], dropout=0.0, attention_dropout=0.0, **options)
    rows = len(model._features(x, y)[1]["input_ids"])
    batch_size = batch_size or rows  # QA: windows vary; one batch of all of them
    assert rows % batch_size == 0 and rows // batch_size >= 1
    finetune(TASKS[task](**options), starts[task], str(data["root"] / file), str(tmp_path / "engine"),
             options=FinetuneOptions(epochs=2, batch_size=batch_size, learning_rate=LR, dropout=0.0,
                                     attention_dropout=0.0, progress=False))
    engine = bertkit.load_model(str(tmp_path / "engine"))

    start = _weights(model.task_model)
    keras.utils.set_random_seed(0)
    model.compile(learning_rate=LR)
    history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and int(model.optimizer.iterations) == 2 * rows // batch_size

    ours, theirs = _weights(model.task_model), _weights(engine)
    trained = [k for k in theirs if "pooler" not in k]
    assert set(trained) <= set(ours)
    moved = max(np.abs(theirs[k] - start[k]).max() for k in trained)
    apart = max(np.abs(theirs[k] - ours[k]).max() for k in trained)
    assert moved > 1e-3, moved  # the updates are real ...
    assert apart < 2e-6, apart  # ... and the two paths make the same ones


def test_token_classifier_saves_loads_and_predicts_as_bertkit_predict(tmp_path, starts, data):
    import keras
    import torch
    from transformers import BertForTokenClassification

    import bertkit
    from bertkit.tasks import TASKS
    from bertkit.tasks.inference import evaluate, predict

    words, tags = data["ner"]
    tagger = bertkit.BertTokenClassifier.from_pretrained(starts["ner"], max_length=32)
    tagger.compile(learning_rate=LR)
    tagger.fit(words, tags, batch_size=8, epochs=2, verbose=0, validation_data=(words[:8], tags[:8]))
    logits = tagger.predict(words)  # [rows, 32, tags]: long sentences have 2 windows at 32 pieces
    assert logits.shape[1:] == (32, len(tagger.labels)) and logits.shape[0] > len(words)

    tagger.save(tmp_path / "t.keras")
    again = keras.saving.load_model(tmp_path / "t.keras")
    np.testing.assert_array_equal(again.predict(words), logits)
    assert again.labels == tagger.labels and again.task.options["max_length"] == 32

    out = str(tmp_path / "hf")
    tagger.save_pretrained(out)
    features = tagger._features(words)[1]
    hf = BertForTokenClassification.from_pretrained(out).eval()
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(features["input_ids"], dtype=torch.long),
                 attention_mask=torch.tensor(features["attention_mask"])).logits.numpy()
    real = features["attention_mask"].astype(bool)
    np.testing.assert_allclose(logits[real], ref[real], atol=2e-5)

    # Word tags and entities equal what `bertkit predict` / `evaluate` give for the saved model.
    predicted = tagger.predict_tags(words)
    assert [len(t) for t in predicted] == [len(w) for w in words]
    texts = [" ".join(w) for w in words]
    assert tagger.predict_entities(texts) == [r["entities"] for r in predict(out, texts, TASKS, runtime="tensorflow")]
    conll = tmp_path / "eval.conll"
    conll.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(ws, ts)) for ws, ts in zip(words, tags)) + "\n",
                     encoding="utf-8")
    assert tagger.score(words, tags) == pytest.approx(evaluate(out, str(conll), TASKS, runtime="tensorflow"))
    reloaded = bertkit.BertTokenClassifier.from_pretrained(out)
    assert reloaded.labels == tagger.labels and reloaded.task.options["max_length"] == 32


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_question_answerer_saves_loads_and_answers_as_bertkit_predict(version, tmp_path, starts, data):
    import keras
    import torch
    from transformers import BertForQuestionAnswering

    import bertkit
    from bertkit.tasks import TASKS
    from bertkit.tasks.inference import evaluate, predict

    (questions, contexts), answers = data["qa" if version == "v1" else "qa2"]
    qa = bertkit.BertQuestionAnswerer.from_pretrained(starts["qa"], max_length=128, doc_stride=64)
    qa.compile(learning_rate=LR)
    qa.fit((questions, contexts), answers, batch_size=8, epochs=1, verbose=0)
    assert qa.task.options["version_2"] == (version == "v2")  # unanswerable questions turn SQuAD 2.0 on
    if version == "v2":
        tuned = qa.calibrate((questions, contexts), answers)
        assert set(tuned) == {"null_score_diff_threshold"}
    outputs = qa.predict((questions, contexts))
    assert outputs.shape[1:] == (128, 2)

    qa.save(tmp_path / "qa.keras")
    again = keras.saving.load_model(tmp_path / "qa.keras")
    np.testing.assert_array_equal(again.predict((questions, contexts)), outputs)

    out = str(tmp_path / "hf")
    qa.save_pretrained(out)
    features = qa._features((questions, contexts))[1]
    hf = BertForQuestionAnswering.from_pretrained(out).eval()
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(features["input_ids"], dtype=torch.long),
                 token_type_ids=torch.tensor(features["token_type_ids"], dtype=torch.long),
                 attention_mask=torch.tensor(features["attention_mask"]))
    real = features["attention_mask"].astype(bool)
    np.testing.assert_allclose(outputs[..., 0][real], ref.start_logits.numpy()[real], atol=2e-5)
    np.testing.assert_allclose(outputs[..., 1][real], ref.end_logits.numpy()[real], atol=2e-5)

    lines = [f"{q}\t{c}" for q, c in zip(questions, contexts)]
    assert qa.predict_answers(questions, contexts) == predict(out, lines, TASKS, runtime="tensorflow")
    file = "squad.json" if version == "v1" else "squad2.json"
    assert qa.score((questions, contexts), answers) == pytest.approx(
        evaluate(out, str(data["root"] / file), TASKS, runtime="tensorflow"))


def test_multiple_choice_saves_loads_and_chooses_as_bertkit_predict(tmp_path, starts, data):
    import keras
    import torch
    from transformers import BertForMultipleChoice

    import bertkit
    from bertkit.tasks import TASKS
    from bertkit.tasks.inference import evaluate, predict

    (questions, choices), answers = data["mc"]
    mc = bertkit.BertMultipleChoice.from_pretrained(starts["multiple-choice"], max_length=64)
    history = mc.fit((questions, choices), answers, batch_size=8, epochs=1, verbose=0)  # compile()'s defaults
    assert "accuracy" in history.history and mc._auto_optimizer["learning_rate"] == 5e-5
    logits = mc.predict((questions, choices))
    assert logits.shape == (16, 5)

    mc.save(tmp_path / "mc.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "mc.keras").predict((questions, choices)), logits)

    out = str(tmp_path / "hf")
    mc.save_pretrained(out)
    features = mc._features((questions, choices))[1]
    hf = BertForMultipleChoice.from_pretrained(out).eval()
    with torch.no_grad():
        ref = hf(**{k: torch.tensor(features[k], dtype=torch.long)
                    for k in ("input_ids", "token_type_ids", "attention_mask")}).logits.numpy()
    np.testing.assert_allclose(logits, ref, atol=2e-5)

    lines = ["\t".join([q, *c]) for q, c in zip(questions, choices)]
    assert mc.predict_choices(questions, choices) == predict(out, lines, TASKS, runtime="tensorflow")
    assert mc.score((questions, choices), answers) == pytest.approx(
        evaluate(out, str(data["root"] / "csqa.jsonl"), TASKS, runtime="tensorflow"))
    # Questions with different numbers of choices: the missing ones never win.
    uneven = mc.predict_choices(questions[:2], [choices[0][:2], choices[1]])
    assert len(uneven[0]["probabilities"]) == 2 and len(uneven[1]["probabilities"]) == 5


def test_bad_input_gets_one_clear_error(starts, tiny_dir, data):
    import bertkit

    words, tags = data["ner"]
    tagger = bertkit.BertTokenClassifier.from_pretrained(starts["ner"])
    with pytest.raises(ValueError, match=r"lists of words \(predict_entities takes raw texts\)"):
        tagger.fit(["John lives here"], [["B-PER", "O", "O"]])
    with pytest.raises(ValueError, match=r"words in x\[1\] but .* tags in y\[1\]"):
        tagger.fit(words[:2], [tags[0], tags[1][:-1]])
    with pytest.raises(ValueError, match=r"x\[0\].*unknown tag 'B-FOO'"):
        tagger.fit([["Mary"]], [["B-FOO"]])
    with pytest.raises(ValueError, match="give labels="):
        bertkit.BertTokenClassifier.from_pretrained(tiny_dir)

    (questions, contexts), answers = data["qa"]
    qa = bertkit.BertQuestionAnswerer.from_pretrained(starts["qa"], max_length=128)
    bad = [dict(answers[0][0], answer_start=answers[0][0]["answer_start"] + 1)]
    with pytest.raises(ValueError, match=r"y\[0\]: answer .* at \d+, context has"):
        qa.fit((questions[:1], contexts[:1]), [bad])
    with pytest.raises(ValueError, match=r"y\[0\]: an answer is"):
        qa.fit((questions[:1], contexts[:1]), [{"answer": "x"}])
    with pytest.raises(ValueError, match="contexts: give a list of texts, not None"):
        qa.predict_answers(questions, None)
    with pytest.raises(ValueError, match="2 questions but 1 contexts"):
        qa.predict_answers(questions[:2], contexts[:1])

    (questions, choices), labels = data["mc"]
    mc = bertkit.BertMultipleChoice.from_pretrained(starts["multiple-choice"])
    with pytest.raises(ValueError, match=r"y\[0\]: answer 7 is not a choice index of \[0, 5\)"):
        mc.fit((questions[:1], choices[:1]), [7])
    with pytest.raises(ValueError, match=r"choices\[0\]: 1 choice\(s\)"):
        mc.predict_choices(questions[:1], [["only"]])
