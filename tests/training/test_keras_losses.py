"""`bertkit.losses` (keras.losses.Loss) against independent references: PyTorch's cross-entropy as
HF's heads use it, and sentence-transformers' own losses on the same embeddings; then inside
`compile` / `evaluate` / `fit` and a `.keras` round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit import losses

RNG = np.random.default_rng(0)


def test_token_classification_loss_is_cross_entropy_with_ignore_index():
    logits = RNG.normal(size=(4, 12, 9)).astype(np.float32)
    tags = RNG.integers(0, 9, size=(4, 12))
    tags[RNG.random(tags.shape) < 0.4] = -100  # later pieces, specials, padding
    want = torch.nn.CrossEntropyLoss(ignore_index=-100)(torch.tensor(logits).reshape(-1, 9),
                                                         torch.tensor(tags).reshape(-1))
    got = losses.TokenClassificationLoss()(tags, logits)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    assert float(losses.TokenClassificationLoss()(np.full((2, 5), -100), logits[:2, :5])) == 0.0


def test_span_loss_is_the_mean_of_start_and_end_cross_entropy():
    start, end = (RNG.normal(size=(6, 20)).astype(np.float32) for _ in range(2))
    positions = RNG.integers(0, 20, size=(6, 2))
    ce = torch.nn.CrossEntropyLoss()
    want = (ce(torch.tensor(start), torch.tensor(positions[:, 0])) + ce(torch.tensor(end), torch.tensor(positions[:, 1]))) / 2
    got = losses.SpanLoss()(positions, np.stack([start, end], -1))
    assert float(got) == pytest.approx(float(want), rel=1e-6)


@pytest.fixture(scope="module")
def st_model(minilm_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    return sentence_transformers.SentenceTransformer(minilm_path, device="cpu")


@pytest.mark.parametrize("scale", [20.0, 7.5])
def test_embedding_losses_equal_sentence_transformers(st_model, scale):
    from sentence_transformers.sentence_transformer import losses as st

    embeddings = RNG.normal(size=(16, 3, 32)).astype(np.float32)  # anchor, positive, hard negative
    scores = RNG.uniform(0, 5, size=16).astype(np.float32)
    columns = [torch.tensor(embeddings[:, k]) for k in range(3)]
    mnrl = st.MultipleNegativesRankingLoss(st_model, scale=scale).compute_loss_from_embeddings(columns, None)
    got = losses.MultipleNegativesRankingLoss(scale=scale)(np.zeros(16), embeddings)
    assert float(got) == pytest.approx(float(mnrl), rel=1e-5)
    got_pairs = losses.MultipleNegativesRankingLoss(scale=scale)(np.zeros(16), embeddings[:, :2])
    want_pairs = st.MultipleNegativesRankingLoss(st_model, scale=scale).compute_loss_from_embeddings(columns[:2], None)
    assert float(got_pairs) == pytest.approx(float(want_pairs), rel=1e-5)
    cosent = st.CoSENTLoss(st_model, scale=scale).compute_loss_from_embeddings(columns[:2], torch.tensor(scores))
    got = losses.CoSENTLoss(scale=scale)(scores, embeddings[:, :2])
    assert float(got) == pytest.approx(float(cosent), rel=1e-5)


def test_losses_work_in_compile_fit_and_keras_files(tmp_path):
    import keras

    features = RNG.normal(size=(32, 10, 8)).astype(np.float32)
    tags = RNG.integers(0, 5, size=(32, 10))
    tags[:, 7:] = -100  # padding
    inputs = keras.Input((10, 8))
    model = keras.Model(inputs, keras.layers.Dense(5)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses.TokenClassificationLoss())
    logits = model.predict(features, verbose=0)
    want = torch.nn.CrossEntropyLoss(ignore_index=-100)(torch.tensor(logits).reshape(-1, 5),
                                                         torch.tensor(tags).reshape(-1))
    assert model.evaluate(features, tags, batch_size=32, verbose=0) == pytest.approx(float(want), rel=1e-5)
    history = model.fit(features, tags, batch_size=32, epochs=5, verbose=0).history["loss"]
    assert history[-1] < history[0]
    model.save(tmp_path / "tagger.keras")
    loaded = keras.saving.load_model(tmp_path / "tagger.keras")
    assert isinstance(loaded.loss, losses.TokenClassificationLoss)
    restored = keras.losses.deserialize(keras.losses.serialize(losses.CoSENTLoss(scale=7.5)))
    assert isinstance(restored, losses.CoSENTLoss) and restored.scale == 7.5
