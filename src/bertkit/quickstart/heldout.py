"""How good is the pretrained model? Masked-LM and NSP accuracy on held-out text, against the
unigram baseline (always predicting the most frequent word piece of the pretraining data).

    python -m bertkit.quickstart.heldout --model OUT/pretrain --train-data OUT/pretrain/data \\
        --corpus OUT/data/corpus_dev.txt --out OUT/pretrain_heldout

Without a held-out corpus the pretraining data itself is scored (and says so: "heldout": false).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def unigram_counts(data_dir: str) -> np.ndarray:
    """Word-piece counts of a pretraining data directory (the original tokens: unmasked records,
    or the masked LM labels of statically masked ones); special tokens and padding excluded."""
    import tensorflow as tf

    from ..data.records import feature_spec, read_metadata

    meta = read_metadata(data_dir)
    dynamic = meta["masking"] == "dynamic"
    spec = feature_spec(meta["max_length"], meta["max_predictions"], dynamic)
    key = "input_ids" if dynamic else "masked_lm_ids"
    files = [os.path.join(data_dir, s["file"]) for s in meta["shards"]]
    counts = np.zeros(meta["vocab_size"], np.int64)
    ds = tf.data.TFRecordDataset(files).batch(2048).map(lambda x: tf.io.parse_example(x, {key: spec[key]}))
    for batch in ds:
        ids = batch[key].numpy().ravel()  # static: masked_lm_ids pad with [PAD], dropped below
        counts += np.bincount(ids, minlength=meta["vocab_size"])
    counts[meta["special_ids"]["all"]] = 0
    return counts


def evaluate_pretraining(model_dir: str, train_data_dir: str, corpus: list[str] | None, out_dir: str,
                         max_length: int = 128, seed: int = 12345, batch_size: int = 64,
                         progress: bool = False) -> dict:
    """{mlm_accuracy, nsp_accuracy, unigram_accuracy, unigram_token, instances, heldout}."""
    import tensorflow as tf
    from tqdm.auto import tqdm

    from ..data.pretraining import PretrainingDataConfig
    from ..data.records import load_pretraining_dataset, read_metadata, write_pretraining_data
    from ..pretrained import load_model
    from ..tokenizer import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    counts = unigram_counts(train_data_dir)
    top = int(counts.argmax())
    if corpus:
        meta = read_metadata(train_data_dir)
        config = PretrainingDataConfig(max_length=max_length, max_predictions=meta["max_predictions"],
                                       dupe_factor=1, static_mask=True)
        write_pretraining_data(corpus, tokenizer, out_dir, config, num_shards=1, seed=seed)
        data_dir = out_dir
    else:
        data_dir = train_data_dir
    dataset = load_pretraining_dataset(data_dir, batch_size, seed=seed, shuffle=False, repeat=False,
                                       drop_remainder=False)
    model = load_model(model_dir, task="pretraining")
    forward = tf.function(lambda x: model(x, training=False))
    sums = dict(mlm=0.0, base=0.0, weight=0.0, nsp=0.0, n=0)
    total = read_metadata(data_dir)["num_instances"]
    with tqdm(total=total, desc="held-out", unit="seq", disable=not progress) as bar:
        for features, labels in dataset:
            out = forward(features)
            weights = labels["masked_lm_weights"].numpy()
            gold = labels["masked_lm_ids"].numpy()
            predicted = out["mlm_logits"].numpy().argmax(-1)
            sums["mlm"] += float(((predicted == gold) * weights).sum())
            sums["base"] += float(((gold == top) * weights).sum())
            sums["weight"] += float(weights.sum())
            nsp = labels["next_sentence_labels"].numpy()
            sums["nsp"] += float((out["nsp_logits"].numpy().argmax(-1) == nsp).sum())
            sums["n"] += len(nsp)
            bar.update(len(nsp))
    return {"mlm_accuracy": sums["mlm"] / max(sums["weight"], 1.0),
            "nsp_accuracy": sums["nsp"] / max(sums["n"], 1),
            "unigram_accuracy": sums["base"] / max(sums["weight"], 1.0),
            "unigram_token": tokenizer.convert_ids_to_tokens([top])[0],
            "masked_tokens": int(sums["weight"]), "instances": sums["n"], "heldout": bool(corpus)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bertkit.quickstart.heldout", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a pretrained model directory (with its MLM/NSP heads)")
    p.add_argument("--train-data", required=True, help="its pretraining data (OUT/data of `bertkit pretrain`)")
    p.add_argument("--corpus", nargs="*", help="held-out text, in the pretraining corpus format")
    p.add_argument("--out", required=True, help="where the held-out instances are written")
    p.add_argument("--max-length", type=int, default=128, help="word pieces per sequence (128)")
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args(argv)
    print(json.dumps(evaluate_pretraining(args.model, args.train_data, args.corpus, args.out, args.max_length,
                                          args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
