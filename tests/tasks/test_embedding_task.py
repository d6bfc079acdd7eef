"""`bertkit finetune embedding` against sentence-transformers: the losses on the same batch and
weights, and a fine-tuned embedder that sentence-transformers loads and embeds identically."""

import json

import numpy as np
import pytest

from bertkit.tasks import TASKS, EmbeddingTask, evaluate, finetune, predict
from bertkit.tasks.base import FinetuneOptions

torch = pytest.importorskip("torch")
sentence_transformers = pytest.importorskip("sentence_transformers")

STSB = dict(delimiter="tab", header=False, text_column=5, text_pair_column=6, label_column=4)


def st_losses(model):
    from sentence_transformers import losses

    return {"cosent": losses.CoSENTLoss(model), "mnrl": losses.MultipleNegativesRankingLoss(model)}


def bertkit_loss(name, embeddings, scores):
    import tensorflow as tf

    task = EmbeddingTask(loss=name)
    loss, _ = task.build_loss()({"embeddings": tf.constant(embeddings)}, {"labels": tf.constant(scores)},
                                {"examples": tf.constant(float(len(scores)))})
    return float(loss)


def test_losses_equal_sentence_transformers_on_the_same_batch_of_real_pairs(minilm_path, shared_data):
    """bertkit's model and loss on 32 real STS-B pairs vs sentence-transformers' model and loss."""
    import tensorflow as tf

    from bertkit.pretrained import load_model, read_config
    from bertkit.tokenizer import load_tokenizer

    task = EmbeddingTask(**STSB)
    examples = task.read(str(shared_data / "stsb" / "sts-dev.csv"))[:32]
    task.fit_lengths(read_config(minilm_path)[0], minilm_path)
    assert task.options["max_length"] == 256  # the folder's sentence_bert_config.json
    features = task.featurize(examples, load_tokenizer(minilm_path), None)
    model = load_model(minilm_path, task="embedding")
    assert (model.pooling, model.normalize) == ("mean", True)
    ours = model({k: tf.constant(features[k]) for k in ("input_ids", "token_type_ids", "attention_mask")})
    ours = ours["embeddings"].numpy()

    reference = sentence_transformers.SentenceTransformer(minilm_path, device="cpu")
    with torch.no_grad():
        pairs = [reference.encode([getattr(e, side) for e in examples], convert_to_tensor=True)
                 for side in ("text", "text_pair")]
    np.testing.assert_allclose(ours, torch.stack(pairs, 1).numpy(), atol=2e-6)
    scores = np.array([float(e.label) for e in examples], np.float32)
    for name, loss in st_losses(reference).items():
        expected = float(loss.compute_loss_from_embeddings(pairs, torch.tensor(scores)))
        assert bertkit_loss(name, ours, scores) == pytest.approx(expected, rel=1e-5, abs=1e-5), name


@pytest.mark.parametrize("texts", [2, 3])
def test_in_batch_negatives_with_hard_negatives_equal_sentence_transformers(minilm_path, texts):
    """(anchor, positive[, negative]) rows: the negatives join every anchor's candidates, in
    sentence-transformers' order; ties in the scores included."""
    rng = np.random.default_rng(texts)
    embeddings = rng.normal(size=(12, texts, 16)).astype(np.float32)
    embeddings[3, 1] = embeddings[3, 0]  # a perfect positive
    reference = sentence_transformers.SentenceTransformer(minilm_path, device="cpu")
    expected = st_losses(reference)["mnrl"].compute_loss_from_embeddings(
        [torch.tensor(embeddings[:, i]) for i in range(texts)], None)
    assert bertkit_loss("mnrl", embeddings, np.zeros(12, np.float32)) == pytest.approx(float(expected), rel=1e-6)
    scores = rng.integers(0, 3, size=12).astype(np.float32)  # ties: pairs with equal scores add nothing
    expected = st_losses(reference)["cosent"].compute_loss_from_embeddings(
        [torch.tensor(embeddings[:, 0]), torch.tensor(embeddings[:, 1])], torch.tensor(scores))
    assert bertkit_loss("cosent", embeddings[:, :2], scores) == pytest.approx(float(expected), rel=1e-6)


@pytest.fixture(scope="module")
def cosent_model(minilm_path, shared_data, tmp_path_factory):
    """MiniLM fine-tuned with CoSENT on 64 STS-B training pairs (one epoch of 4 steps)."""
    root = tmp_path_factory.mktemp("embedding")
    train = root / "train.tsv"
    train.write_text("".join((shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8")
                             .splitlines(keepends=True)[:64]), encoding="utf-8")
    dev = root / "dev.tsv"
    dev.write_text("".join((shared_data / "stsb" / "sts-dev.csv").read_text(encoding="utf-8")
                           .splitlines(keepends=True)[:96]), encoding="utf-8")
    out = root / "model"
    metrics = finetune(EmbeddingTask(**STSB), minilm_path, str(train), str(out), dev_file=str(dev),
                       options=FinetuneOptions(epochs=1, batch_size=16, learning_rate=2e-5, progress=False))
    return out, dev, metrics


def test_fine_tuned_embedder_is_a_sentence_transformers_folder(cosent_model, minilm_path):
    """sentence-transformers loads the saved folder unchanged and embeds as bertkit does; the dev
    Spearman finetune reports is the one its embeddings give (EmbeddingSimilarityEvaluator's)."""
    from scipy import stats

    from bertkit.embeddings import Embedder, read_pooling_config

    out, dev, metrics = cosent_model
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertModel"]
    assert read_pooling_config(str(out)) == read_pooling_config(minilm_path)  # mean, normalised, 256
    examples = EmbeddingTask(**STSB).read(str(dev))
    a, b = [e.text for e in examples], [e.text_pair for e in examples]
    reference = sentence_transformers.SentenceTransformer(str(out), device="cpu")
    ref_a, ref_b = reference.encode(a), reference.encode(b)
    ours = Embedder(str(out), runtime="tensorflow")
    ours_a = ours.encode(a)
    assert np.min(np.sum(ours_a * ref_a, axis=1)) >= 0.99999
    spearman = stats.spearmanr([float(e.label) for e in examples], np.sum(ref_a * ref_b, axis=1)).statistic
    assert metrics["spearman"] == pytest.approx(spearman, abs=1e-4)
    before = sentence_transformers.SentenceTransformer(minilm_path, device="cpu").encode(a)
    assert np.abs(before - ref_a).max() > 1e-3  # training moved the weights


def test_evaluate_and_predict_on_the_saved_embedder(cosent_model):
    """`evaluate` scores a scored file as finetune's dev pass did (TFLite runtime); `predict`
    writes each TAB pair's cosine, and a line that is not a pair is an error naming it."""
    out, dev, metrics = cosent_model
    scores = evaluate(str(out), str(dev), TASKS, runtime="tflite", **STSB)
    assert scores["spearman"] == pytest.approx(metrics["spearman"], abs=1e-4)
    examples = EmbeddingTask(**STSB).read(str(dev))[:5]
    lines = [f"{e.text}\t{e.text_pair}" for e in examples]
    results = predict(str(out), lines + ["", lines[0]], TASKS, runtime="tensorflow")
    assert results[5] == {"similarity": None} and results[6] == results[0]
    from bertkit.embeddings import Embedder

    vectors = Embedder(str(out), runtime="tensorflow")
    a, b = vectors.encode([e.text for e in examples]), vectors.encode([e.text_pair for e in examples])
    np.testing.assert_allclose([r["similarity"] for r in results[:5]], np.sum(a * b, axis=1), atol=2e-5)
    with pytest.raises(ValueError, match="<input>:2: give two TAB-separated texts"):
        predict(str(out), [lines[0], "one text alone"], TASKS, runtime="tensorflow")


def test_pairs_train_with_in_batch_negatives_and_score_by_retrieval(minilm_path, shared_data, tmp_path):
    """(anchor, positive) JSON Lines: MNRL is chosen, the dev metric is MRR@10 of each anchor's
    positive among all dev positives (computed here independently)."""
    from bertkit.embeddings import Embedder

    rows = [line.split("\t") for line in (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8")
            .splitlines()]
    pairs = [{"anchor": r[5], "positive": r[6]} for r in rows if float(r[4]) >= 4.0]
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train.write_text("".join(json.dumps(p) + "\n" for p in pairs[:48]), encoding="utf-8")
    dev.write_text("".join(json.dumps(p) + "\n" for p in pairs[48:88]), encoding="utf-8")
    task = EmbeddingTask()
    metrics = finetune(task, minilm_path, str(train), str(tmp_path / "m"), dev_file=str(dev),
                       options=FinetuneOptions(epochs=1, batch_size=16, progress=False))
    assert task.options["loss"] == "mnrl" and task.metric == "mrr@10"
    vectors = Embedder(str(tmp_path / "m"), runtime="tensorflow")
    queries = vectors.encode([p["anchor"] for p in pairs[48:88]])
    documents = vectors.encode([p["positive"] for p in pairs[48:88]])
    scores = queries @ documents.T
    ranks = 1 + (scores > np.diag(scores)[:, None]).sum(axis=1)
    assert metrics["accuracy@1"] == pytest.approx(np.mean(ranks == 1))
    assert metrics["mrr@10"] == pytest.approx(np.mean(np.where(ranks <= 10, 1 / ranks, 0)), abs=1e-6)
    assert metrics["mrr@10"] > 0.8  # near-paraphrases find each other


def test_bad_embedding_inputs_name_the_file_and_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a man eats\tsomeone eats\t4.5\nthe sky\tthe sea\tbad\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"pairs.tsv:2: the score 'bad' is not a number"):
        EmbeddingTask(label_column=2).read(str(path), train=True)
    with pytest.raises(ValueError, match=r"pairs.tsv: --loss cosent needs a score per pair"):
        EmbeddingTask(loss="cosent").read(str(path), train=True)
    with pytest.raises(ValueError, match="--loss must be one of mnrl, cosent"):
        EmbeddingTask(loss="triplet")


def test_stsb_dev_spearman_equals_sentence_transformers(minilm_path, shared_data):
    """All 1,500 STS-B dev pairs embedded by bertkit (the default CPU runtime) and by
    sentence-transformers: the Spearman correlation of cosine with the scores agrees to 4 decimals."""
    from scipy import stats

    from bertkit.embeddings import Embedder

    examples = EmbeddingTask(**STSB).read(str(shared_data / "stsb" / "sts-dev.csv"))
    assert len(examples) == 1500
    gold = [float(e.label) for e in examples]
    texts = [[e.text for e in examples], [e.text_pair for e in examples]]
    ours = Embedder(minilm_path)
    reference = sentence_transformers.SentenceTransformer(minilm_path, device="cpu")
    a, b = (ours.encode(t) for t in texts)
    ref_a, ref_b = (reference.encode(t, normalize_embeddings=True) for t in texts)
    spearman = stats.spearmanr(gold, np.sum(a * b, axis=1)).statistic
    assert spearman == pytest.approx(stats.spearmanr(gold, np.sum(ref_a * ref_b, axis=1)).statistic, abs=5e-5)
    assert 0.85 < spearman < 0.9  # all-MiniLM-L6-v2's published STS-B dev figure is about 0.87


def test_export_of_the_trained_embedder_gives_its_embeddings(cosent_model, tmp_path):
    """`bertkit export` (kind auto) of the trained folder: an encoder SavedModel whose
    sentence_embedding is the folder's pooling and normalisation, as sentence-transformers embeds."""
    import tensorflow as tf

    from bertkit.export import export_model, read_metadata

    out, dev, _ = cosent_model
    path = export_model(str(out), str(tmp_path / "export"))
    metadata = read_metadata(path)
    assert metadata["kind"] == "encoder"
    assert (metadata["options"]["pooling"], metadata["options"]["normalize"]) == ("mean", True)
    texts = [e.text for e in EmbeddingTask(**STSB).read(str(dev))[:24]]
    got = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(texts))["sentence_embedding"]
    want = sentence_transformers.SentenceTransformer(str(out), device="cpu").encode(texts)
    assert np.min(np.sum(got.numpy() * want, axis=1)) >= 0.99999


def test_hard_negative_columns_are_read_and_scored_as_sentence_transformers(minilm_path, shared_data, tmp_path):
    """(anchor, positive, negative) rows from a TSV and from JSON Lines: features [N, 3, L], and the
    MNRL loss of MiniLM's embeddings of them equals sentence-transformers' on the same triplets."""
    import tensorflow as tf

    from bertkit.pretrained import load_model
    from bertkit.tokenizer import load_tokenizer

    rows = [line.split("\t") for line in (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8")
            .splitlines()]
    close = [(r[5], r[6]) for r in rows if float(r[4]) >= 4.0][:16]
    far = [r[6] for r in rows if float(r[4]) <= 1.0][:16]
    triplets = [(a, p, n) for (a, p), n in zip(close, far)]
    (tmp_path / "t.tsv").write_text("".join("\t".join(t) + "\n" for t in triplets), encoding="utf-8")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"anchor": a, "positive": p, "negative": n}) + "\n"
                                              for a, p, n in triplets), encoding="utf-8")
    from_tsv = EmbeddingTask(negative_column=["2"], header=False).read(str(tmp_path / "t.tsv"), train=True)
    from_jsonl = EmbeddingTask(negative_column=["negative"]).read(str(tmp_path / "t.jsonl"), train=True)
    assert [(e.text, e.text_pair, e.negatives) for e in from_tsv] == \
        [(e.text, e.text_pair, e.negatives) for e in from_jsonl] == [(a, p, (n,)) for a, p, n in triplets]

    task = EmbeddingTask(negative_column=["2"], header=False, max_length=128)
    features = task.featurize(from_tsv, load_tokenizer(minilm_path), None)
    assert features["input_ids"].shape[:2] == (16, 3)
    model = load_model(minilm_path, task="embedding")
    ours = model({k: tf.constant(features[k]) for k in ("input_ids", "token_type_ids", "attention_mask")})
    reference = sentence_transformers.SentenceTransformer(minilm_path, device="cpu")
    with torch.no_grad():
        columns = [reference.encode([t[i] for t in triplets], convert_to_tensor=True) for i in range(3)]
    np.testing.assert_allclose(ours["embeddings"].numpy(), torch.stack(columns, 1).numpy(), atol=2e-6)
    expected = float(st_losses(reference)["mnrl"].compute_loss_from_embeddings(columns, None))
    got = bertkit_loss("mnrl", ours["embeddings"].numpy(), np.zeros(16, np.float32))
    assert got == pytest.approx(expected, abs=1e-6)  # the loss is small (4e-4): clear positives

    finetune(task, minilm_path, str(tmp_path / "t.tsv"), str(tmp_path / "m"),
             options=FinetuneOptions(max_steps=2, batch_size=8, progress=False))
    assert (tmp_path / "m" / "modules.json").exists()
    with pytest.raises(ValueError, match="hard negatives .* not with scored pairs"):
        EmbeddingTask(negative_column=["1"], text_pair_column=2, label_column=0, header=False).read(
            str(tmp_path / "t.tsv"))


def test_dense_modules_train_and_save_for_sentence_transformers(minilm_path, shared_data, tmp_path):
    """An embedder with a Dense module (sentence-transformers' projection after pooling) trains it
    with the encoder and saves it in sentence-transformers' layout, which loads and embeds as
    bertkit does."""
    from safetensors.numpy import load_file
    from sentence_transformers.models import Dense, Normalize

    from bertkit.embeddings import Embedder, read_pooling_config

    torch.manual_seed(0)
    base = sentence_transformers.SentenceTransformer(minilm_path, device="cpu")
    start = tmp_path / "start"
    sentence_transformers.SentenceTransformer(modules=[base[0], base[1], Dense(384, 64), Normalize()],
                                              device="cpu").save(str(start))
    train = tmp_path / "train.tsv"
    train.write_text("".join((shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8")
                             .splitlines(keepends=True)[:32]), encoding="utf-8")
    out = tmp_path / "model"
    finetune(EmbeddingTask(**STSB), str(start), str(train), str(out),
             options=FinetuneOptions(epochs=1, batch_size=16, learning_rate=1e-4, progress=False))
    found = read_pooling_config(str(out))
    assert [(d.in_features, d.out_features, d.activation) for d in found.dense] == [
        (384, 64, "torch.nn.modules.activation.Tanh")] and found.normalize
    [before] = [p for p in start.iterdir() if p.name.endswith("_Dense")]
    moved = load_file(str(out / "2_Dense" / "model.safetensors"))["linear.weight"]
    assert np.abs(moved - load_file(str(before / "model.safetensors"))["linear.weight"]).max() > 1e-5
    texts = [e.text for e in EmbeddingTask(**STSB).read(str(train))]
    want = sentence_transformers.SentenceTransformer(str(out), device="cpu").encode(texts)
    got = Embedder(str(out), runtime="tensorflow").encode(texts)
    assert got.shape == (32, 64) and np.min(np.sum(got * want, axis=1)) >= 0.99999


def test_an_interrupted_embedding_run_resumes_to_the_same_model(tiny_dir, shared_data, tmp_path, monkeypatch):
    """Killed after its first epoch's checkpoint (in the dev pass), the same command finishes the
    run: the saved encoder and Dense weights equal an uninterrupted run's (random batches, dropout
    and the Dense module's variables all resume)."""
    import shutil

    from safetensors.numpy import load_file

    import bertkit.tasks.base as base
    from bertkit.embeddings import DenseConfig, PoolingConfig, write_sentence_transformers_files

    start = tmp_path / "start"
    shutil.copytree(tiny_dir, start)
    rng = np.random.default_rng(0)
    pooling = PoolingConfig("mean", True, 64, (DenseConfig("", 32, 16),))
    write_sentence_transformers_files(str(start), pooling, 32, [
        {"linear.weight": rng.normal(0, 0.2, (16, 32)).astype(np.float32), "linear.bias": np.zeros(16, np.float32)}])
    lines = (shared_data / "stsb" / "sts-train.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("".join(lines[:64]), encoding="utf-8")
    dev.write_text("".join(lines[64:96]), encoding="utf-8")
    options = FinetuneOptions(epochs=2, batch_size=16, learning_rate=1e-3, progress=False, seed=5)

    def run(out):
        return finetune(EmbeddingTask(**STSB), str(start), str(train), str(out), dev_file=str(dev), options=options)

    run(tmp_path / "whole")
    real_run_model, passes = base.run_model, []

    def dies_in_the_first_dev_pass(*args, **kwargs):
        passes.append(1)
        if len(passes) == 1:
            raise KeyboardInterrupt
        return real_run_model(*args, **kwargs)

    monkeypatch.setattr(base, "run_model", dies_in_the_first_dev_pass)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    run(tmp_path / "resumed")
    for name in ("model.safetensors", "2_Dense/model.safetensors"):
        whole, resumed = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "resumed" / name))
        assert whole.keys() == resumed.keys()
        for key in whole:
            np.testing.assert_allclose(resumed[key], whole[key], atol=1e-6, err_msg=f"{name} {key}")
