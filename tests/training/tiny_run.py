"""A tiny pretraining run on synthetic data, run as a subprocess by the training tests:
python -m tests.training.tiny_run OUT STEPS [--strategy none|mirrored|multiworker] [--logical-cpus N]
Prints one JSON line: the loss history and a checksum of the final weights."""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def synthetic_dataset(global_batch: int, seed: int = 1):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n, seq, preds = 256, 16, 3
    ids = rng.integers(5, 99, (n, seq)).astype(np.int32)
    positions = np.tile(np.arange(1, 1 + preds), (n, 1)).astype(np.int32)
    features = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids),
                "masked_lm_positions": positions}
    labels = {"masked_lm_ids": ids[:, 1:1 + preds], "masked_lm_weights": np.ones((n, preds), np.float32),
              "next_sentence_labels": (ids[:, 0] % 2).astype(np.int32)}
    ds = tf.data.Dataset.from_tensor_slices((features, labels)).repeat().shuffle(64, seed=seed)
    return ds.batch(global_batch, drop_remainder=True)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("steps", type=int)
    p.add_argument("--total-steps", type=int, default=40)
    p.add_argument("--strategy", default="none")
    p.add_argument("--logical-cpus", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--accumulation", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--xla", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--dense-grads", type=int, default=0, help="1: densify embedding gradients at once")
    args = p.parse_args(argv)

    import tensorflow as tf

    if args.logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)
    from bertkit.training.trainer import select_strategy

    strategy = select_strategy(args.strategy)  # before any other op, as multi-worker requires

    import numpy as np

    from bertkit.config import BertConfig
    from bertkit.model.models import build_task_model
    from bertkit.training.losses import PretrainingLoss
    from bertkit.training.optimizer import OptimizerConfig
    from bertkit.training.trainer import TrainConfig, Trainer

    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=args.dropout,
                        attention_probs_dropout_prob=args.dropout)
    trainer = Trainer(lambda: build_task_model("pretraining", config), PretrainingLoss(), args.out,
                      TrainConfig(steps=args.steps, checkpoint_every=args.checkpoint_every, log_every=1,
                                  xla=bool(args.xla), accumulation_steps=args.accumulation, deterministic=True,
                                  progress=False),
                      OptimizerConfig(learning_rate=args.lr, warmup_steps=5, total_steps=args.total_steps),
                      strategy=strategy)
    if args.dense_grads:
        trainer._sparse_grads = False
    history = trainer.fit(synthetic_dataset(args.batch))
    weights = float(sum(np.abs(v.numpy()).sum() for v in trainer.model.trainable_variables))
    print(json.dumps({"loss": [r["loss"] for r in history], "weights": weights,
                      "resumed_from": trainer.resumed_from}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
