"""Tiny-config tests of every layer and head: masking, dropout, gradients, precision, XLA."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from bertkit.model.encoder import BertEncoder
from bertkit.model.models import build_task_model


def random_batch(config, batch=3, seq=7, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, config.vocab_size, (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    types = np.zeros((batch, seq), np.int32)
    types[0, 4:] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def test_padding_is_really_masked(tiny_config):
    encoder = BertEncoder(tiny_config).build_weights()
    batch = random_batch(tiny_config)
    out1 = encoder(batch)["sequence_output"].numpy()
    changed = dict(batch, input_ids=np.where(batch["attention_mask"] == 1, batch["input_ids"], 7))
    changed["token_type_ids"] = np.where(batch["attention_mask"] == 1, batch["token_type_ids"], 1)
    out2 = encoder(changed)["sequence_output"].numpy()
    real = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(out1[real], out2[real], atol=1e-6)
    assert np.abs(out1[~real] - out2[~real]).max() > 1e-3  # padded positions did change


def test_defaults_for_optional_inputs(tiny_config):
    encoder = BertEncoder(tiny_config).build_weights()
    batch = random_batch(tiny_config)
    full = encoder({"input_ids": batch["input_ids"], "token_type_ids": np.zeros_like(batch["input_ids"]),
                    "attention_mask": np.ones_like(batch["input_ids"])})
    short = encoder({"input_ids": batch["input_ids"]})
    np.testing.assert_allclose(full["pooled_output"], short["pooled_output"], atol=1e-6)
    with pytest.raises(ValueError, match="input_ids"):
        encoder(batch["input_ids"])
    with pytest.raises(ValueError, match="unknown input"):
        encoder({**batch, "segment_ids": batch["input_ids"]})


def test_dropout_only_in_training(tiny_config):
    encoder = BertEncoder(tiny_config).build_weights()
    batch = random_batch(tiny_config)
    a = encoder(batch, training=False)["sequence_output"].numpy()
    b = encoder(batch, training=False)["sequence_output"].numpy()
    np.testing.assert_array_equal(a, b)
    c = encoder(batch, training=True)["sequence_output"].numpy()
    d = encoder(batch, training=True)["sequence_output"].numpy()
    assert np.abs(c - d).max() > 1e-3 and np.abs(a - c).max() > 1e-3


def test_dropout_gradient_is_that_of_the_drawn_masks(tiny_config):
    """In a traced step (as the Trainer runs it) the backward pass uses the forward pass's masks:
    the tape's gradient equals a finite difference of the loss taken with the same masks (the
    seed generators' states restored before each evaluation), and the next call draws new masks."""
    model = build_task_model("qa", tiny_config)
    batch = random_batch(tiny_config, batch=4, seq=12)
    model(batch)
    target = tf.constant([1, 3, 0, 1])
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    start = [v.numpy() for v in seeds]

    def loss():
        out = model(batch, training=True)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            target, out["start_logits"], from_logits=True))

    @tf.function
    def loss_and_gradient():
        with tf.GradientTape() as tape:
            value = loss()
        return value, tape.gradient(value, model.trainable_variables)

    traced_loss = tf.function(loss)

    def same_masks(fn):
        for v, s in zip(seeds, start):
            v.assign(s)
        return fn()

    value, grads = same_masks(loss_and_gradient)
    grads = [tf.convert_to_tensor(g) for g in grads]
    assert float(same_masks(traced_loss)) == pytest.approx(float(value), rel=1e-6)
    assert abs(float(traced_loss()) - float(value)) > 1e-4  # a second call: new masks
    norm = float(tf.linalg.global_norm(grads))
    weights = [v.numpy() for v in model.trainable_variables]

    def loss_at(eps):  # the loss after a step of eps along the unit gradient
        for v, w, g in zip(model.trainable_variables, weights, grads):
            v.assign(w + eps * g.numpy() / norm)
        return float(same_masks(traced_loss))

    eps = 1e-3
    assert (loss_at(eps) - loss_at(-eps)) / (2 * eps) == pytest.approx(norm, rel=2e-3)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_drops_the_rate_and_keeps_the_mean(dtype, rate):
    """bertkit's Dropout on 2 million ones, in float32 and bf16: the dropped fraction is
    round(rate * 65536) / 65536 within 5 standard errors (Keras' bf16 dropout drops 0.1017 at 0.1),
    every kept value is 1 / (1 - that fraction) rounded once to the dtype, so the mean is 1 up to
    the sampling error and that rounding; another call draws another mask, an odd size works."""
    from bertkit.model.layers import Dropout

    layer = Dropout(rate, seed=11, dtype="mixed_bfloat16" if dtype == tf.bfloat16 else "float32")
    x = tf.ones([2001, 999], dtype)
    y = layer(x, training=True).numpy().astype(np.float64)
    p = round(rate * 65536) / 65536
    dropped = float((y == 0).mean())
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / y.size)
    kept = np.unique(y[y != 0])
    assert kept.tolist() == [float(tf.cast(1 / (1 - p), dtype).numpy())]
    assert abs(y.mean() - 1) < 5 * np.sqrt(p / (1 - p) / y.size) + abs(kept[0] * (1 - p) - 1)
    again = layer(x, training=True).numpy()
    assert 0 < float((again.astype(np.float64) != y).mean()) < 2 * p
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    assert not Dropout(1.0)(x, training=True).numpy().any()


@pytest.mark.parametrize("task", ["pretraining", "classify", "ner", "qa"])
def test_gradients_reach_every_weight(tiny_config, task):
    model = build_task_model(task, tiny_config, num_labels=3)
    batch = random_batch(tiny_config)
    if task == "pretraining":
        batch["masked_lm_positions"] = np.array([[1, 2], [1, 3], [0, 1]], np.int32)
    with tf.GradientTape() as tape:
        out = model(batch, training=True)
        loss = sum(tf.reduce_sum(v * v) for k, v in out.items() if "logits" in k)
    grads = tape.gradient(loss, model.trainable_variables)
    names = [v.path for v in model.trainable_variables]
    missing = [n for n, g in zip(names, grads) if g is None or not np.any(tf.convert_to_tensor(g).numpy())]
    assert not missing, missing
    # every variable is trainable and the MLM decoder shares the word embedding table
    expected = 5 + 16 * tiny_config.num_hidden_layers + (0 if task in ("ner", "qa") else 2)
    expected += {"pretraining": 7, "classify": 2, "ner": 2, "qa": 2}[task]
    assert len(model.trainable_variables) == expected


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_task_heads_start_from_hf_normal_and_the_encoder_from_truncated_normal(tiny_config, task):
    """HF draws a fresh task head from N(0, initializer_range); the truncated normal of the rest
    (google-research's) has no values beyond two standard deviations and 0.88x the spread."""
    keras.utils.set_random_seed(0)
    model = build_task_model(task, tiny_config, num_labels=400)
    sigma = tiny_config.initializer_range
    init = model.head.dense.kernel_initializer
    assert isinstance(init, keras.initializers.RandomNormal) and init.stddev == sigma
    head = model.head.dense.kernel.numpy()
    if task != "qa":  # 32 x 400 draws; QA's head has 2 outputs only
        assert head.std() == pytest.approx(sigma, rel=0.03)
        assert np.mean(np.abs(head) > 2 * sigma) == pytest.approx(0.0455, abs=0.01)
    query = model.encoder.blocks[0].attention.query.kernel.numpy()
    assert np.abs(query).max() <= 2 * sigma and query.std() == pytest.approx(0.88 * sigma, rel=0.05)
    nsp = build_task_model("pretraining", tiny_config).nsp.dense.kernel.numpy()
    assert np.abs(nsp).max() <= 2 * sigma


def test_task_output_shapes(tiny_config):
    batch = random_batch(tiny_config)
    assert build_task_model("classify", tiny_config, 5)(batch)["logits"].shape == (3, 5)
    assert build_task_model("ner", tiny_config, 4)(batch)["logits"].shape == (3, 7, 4)
    qa = build_task_model("qa", tiny_config)(batch)
    assert qa["start_logits"].shape == (3, 7) and qa["end_logits"].shape == (3, 7)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(tiny_config, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_task_model("pretraining", tiny_config)
        batch = random_batch(tiny_config)
        batch["masked_lm_positions"] = np.array([[1, 2], [1, 3], [0, 1]], np.int32)
        out = model(batch)
        half = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float16
        assert out["sequence_output"].dtype == tf.float32  # from the float32 LayerNorm
        assert out["mlm_logits"].dtype == tf.float32 and out["nsp_logits"].dtype == tf.float32
        assert model.encoder.blocks[0].attention.query.compute_dtype == half.name
        assert all(v.dtype == "float32" for v in model.trainable_variables)
        assert np.isfinite(out["mlm_logits"].numpy()).all()
        for task in ("classify", "ner", "qa"):
            outs = build_task_model(task, tiny_config)(batch)
            assert all(v.dtype == tf.float32 for v in outs.values())
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_xla_matches_eager_and_handles_variable_lengths(tiny_config):
    encoder = BertEncoder(tiny_config).build_weights()
    fn = tf.function(lambda x: encoder(x), jit_compile=True)
    for seq in (2, 5, 9):
        batch = random_batch(tiny_config, seq=seq)
        eager = encoder(batch)["sequence_output"].numpy()
        compiled = fn({k: tf.constant(v) for k, v in batch.items()})["sequence_output"].numpy()
        np.testing.assert_allclose(eager, compiled, atol=1e-5)


def test_too_long_sequence_is_a_clear_error(tiny_config):
    encoder = BertEncoder(tiny_config).build_weights()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        encoder({"input_ids": np.ones((1, 65), np.int32)})


def test_mlm_never_builds_full_vocab_logits(tiny_config):
    model = build_task_model("pretraining", tiny_config)
    batch = random_batch(tiny_config)
    batch["masked_lm_positions"] = np.array([[1], [2], [3]], np.int32)
    graph = tf.function(lambda x: model(x)).get_concrete_function(
        {k: tf.TensorSpec([3, None] if k != "masked_lm_positions" else [3, 1], tf.int32) for k in batch}).graph
    vocab = tiny_config.vocab_size
    shapes = [op.outputs[0].shape for op in graph.get_operations() if op.outputs]
    # the only [.., vocab] tensors have the masked-position dimension (1), never the sequence one
    assert not any(s.rank == 3 and s[-1] == vocab and s[1] != 1 for s in shapes)
