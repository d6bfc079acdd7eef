"""bertkit's random draws for one fine-tuning seed, for `finetune_hf.py --bertkit-draws`.

`bertkit finetune TASK --seed S` draws two things at random besides dropout: the task head's
initial weights and the order of the training batches in each epoch. This script writes both, as
finetune draws them, to a JSON file. The HF reference started from that file runs bertkit's seed S
with only dropout's random numbers its own, which separates "bertkit drew unlucky seeds" from
"bertkit computes something else" when the two frameworks' scores differ.

  python benchmarks/bertkit_draws.py qa --model $M --train squad_train_00-29.json --seed 16 --out d16.json
  python benchmarks/finetune_hf.py qa --model $M ... --seed 16 --bertkit-draws d16.json

Takes finetune's data flags (columns, --max-length, --articles, ...) with the same meaning.
"""

from __future__ import annotations

import argparse
import json
import math

import keras
import numpy as np

from bertkit import load_model, load_tokenizer
from bertkit.cli.options import add_task_flags, task_options
from bertkit.data.common import _bucketed_batches
from bertkit.tasks import TASKS


def bertkit_draws(task_name: str, init: str, train: str, seed: int, batch_size: int = 32,
                  epochs: float = 1.0, options: dict | None = None) -> dict:
    """{"features", "labels", "head": {"weight" [outputs, hidden], "bias"}, "epochs": [batches]}:
    the head as HF lays out its Linear, and per epoch the feature indices of each batch."""
    task = TASKS[task_name](**(options or {}))
    examples = task.read(train, train=True)
    labels = task.labels_from(examples)
    mask = task.featurize(examples, load_tokenizer(init), labels)["attention_mask"]
    # finetune's Trainer seeds Keras and then builds the model: the same two calls draw the head.
    keras.utils.set_random_seed(seed)
    head = load_model(init, task=task_name, labels=labels).head.dense
    # make_dataset(shuffle=True, bucket=True) orders epoch e with default_rng([seed, e]).
    orders = [[[int(i) for i in batch] for batch in
               _bucketed_batches(mask, batch_size, np.random.default_rng([seed, e]), drop_remainder=True)]
              for e in range(math.ceil(epochs))]
    return {"task": task_name, "seed": seed, "features": len(mask), "labels": labels,
            "head": {"weight": head.kernel.numpy().T.tolist(), "bias": head.bias.numpy().tolist()},
            "epochs": orders}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", choices=["classify", "ner", "qa"])
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--out", required=True)
    add_task_flags(p, TASKS)
    args = p.parse_args(argv)
    draws = bertkit_draws(args.task, args.model, args.train, args.seed, args.batch_size, args.epochs,
                          task_options(args, TASKS))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(draws, f)
    print(f"{args.out}: {draws['features']} features, {len(draws['epochs'])} epoch(s) of "
          f"{len(draws['epochs'][0])} batches")


if __name__ == "__main__":
    main()
