"""Pretraining TFRecords: write shards from raw text, read them back as a tf.data pipeline.

Two masking modes, chosen when writing (recorded in the metadata file):
  * static: masks are drawn once per instance in Python (`create_masked_lm_predictions`), and
    `dupe_factor` copies of the corpus with different masks are written (google-research).
  * dynamic: records hold unmasked instances; `DynamicMasking` draws new masks in the tf.data graph for
    every batch, so each epoch sees different masks (RoBERTa), reproducibly for a seed.

Record features (fixed length; S = max_length, P = max_predictions; stored as int64/float, read as
int32/float32):
    static : input_ids [S], token_type_ids [S], attention_mask [S], masked_lm_positions [P],
             masked_lm_ids [P], masked_lm_weights [P] float, next_sentence_labels [1]
    dynamic: input_ids [S], token_type_ids [S], next_sentence_labels [1]
next_sentence_labels: 0 = IsNext (B follows A), 1 = NotNext (B from another document), as google-research.

The output directory holds the shards `pretrain-00000-of-00008.tfrecord`..., `vocab.txt` (the vocabulary
used, so the reader can rebuild the masking tables) and `pretraining_data.json` (METADATA_FILE), written
last: a directory without it is incomplete.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from .corpus import check_corpus
from .masking import DynamicMasking, MaskingSpec, vocab_tokens
from .pretraining import PretrainingDataConfig, TrainingInstance, create_pretraining_instances

logger = logging.getLogger(__name__)

METADATA_FILE = "pretraining_data.json"
VOCAB_FILE = "vocab.txt"
FORMAT_VERSION = 1
FEATURE_NAMES = ("input_ids", "token_type_ids", "attention_mask", "masked_lm_positions")
LABEL_NAMES = ("masked_lm_ids", "masked_lm_weights", "next_sentence_labels")


def shard_name(index: int, num_shards: int) -> str:
    return f"pretrain-{index:05d}-of-{num_shards:05d}.tfrecord"


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------
class ExampleEncoder:
    """Serializes instances to tf.train.Example bytes, padded to fixed lengths (module docstring).

    One Example is reused and its lists overwritten: 3x faster than building Feature objects per record.
    """

    def __init__(self, max_length: int, max_predictions: int, pad_id: int = 0,
                 dynamic: bool = False):
        self.max_length, self.max_predictions = max_length, max_predictions
        self.pad_id, self.dynamic = pad_id, dynamic
        self._example = tf.train.Example()
        features = self._example.features.feature
        names = ["input_ids", "token_type_ids", "next_sentence_labels"]
        if not dynamic:
            names += ["attention_mask", "masked_lm_positions", "masked_lm_ids"]
            self._weights = features["masked_lm_weights"].float_list.value
        self._ints = {name: features[name].int64_list.value for name in names}

    def __call__(self, instance: TrainingInstance) -> bytes:
        n = len(instance.input_ids)
        if n > self.max_length:
            raise ValueError(f"instance of {n} tokens is longer than max_length {self.max_length}")
        pad = self.max_length - n
        ints = self._ints
        ints["input_ids"][:] = instance.input_ids + [self.pad_id] * pad
        ints["token_type_ids"][:] = instance.token_type_ids + [0] * pad
        ints["next_sentence_labels"][:] = [1 if instance.is_random_next else 0]
        if not self.dynamic:
            m = len(instance.masked_lm_positions)
            pad_p = self.max_predictions - m
            ints["attention_mask"][:] = [1] * n + [0] * pad
            ints["masked_lm_positions"][:] = instance.masked_lm_positions + [0] * pad_p
            ints["masked_lm_ids"][:] = instance.masked_lm_ids + [0] * pad_p
            self._weights[:] = [1.0] * m + [0.0] * pad_p
        return self._example.SerializeToString()


def instance_to_example(instance: TrainingInstance, max_length: int, max_predictions: int,
                        pad_id: int = 0, dynamic: bool = False) -> bytes:
    """One serialized tf.train.Example (see ExampleEncoder, faster for many)."""
    return ExampleEncoder(max_length, max_predictions, pad_id, dynamic)(instance)


def _save_vocab(tokenizer, out: Path) -> None:
    # A bertkit tokenizer also saves its settings (casing...), so OUT loads as a tokenizer directory.
    if hasattr(tokenizer, "save"):
        tokenizer.save(out)
    # vocab.txt in id order is what the reader builds its masking tables from, whatever `save` wrote.
    (out / VOCAB_FILE).write_text("".join(f"{t}\n" for t in vocab_tokens(tokenizer)), encoding="utf-8")


def write_pretraining_data(corpus: Sequence[str], tokenizer, out_dir: str | os.PathLike,
                           config: PretrainingDataConfig, *, num_shards: int = 8, seed: int = 12345,
                           fmt: str = "auto", errors: str = "strict", progress: bool = False) -> dict:
    """Raw text files -> TFRecord shards + vocab.txt + metadata in `out_dir`. Returns the metadata dict.

    `config.static_mask` picks the mode (False = dynamic: unmasked records). Input problems (missing or
    empty files, one document, undecodable bytes) raise before any shard is written. Instances go to the
    shards round-robin, so shards have equal sizes (within one) and mixed content.
    """
    if num_shards < 1:
        raise ValueError(f"shards must be positive, got {num_shards}")
    corpus = [str(p) for p in corpus]
    started = time.perf_counter()
    check_corpus(corpus, fmt=fmt, errors=errors)
    spec = MaskingSpec.from_tokenizer(tokenizer)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The metadata marks a complete directory: remove it first, and stale shards of an earlier run.
    (out / METADATA_FILE).unlink(missing_ok=True)
    for old in out.glob("pretrain-*-of-*.tfrecord"):
        old.unlink()
    _save_vocab(tokenizer, out)

    dynamic = not config.static_mask
    names = [shard_name(i, num_shards) for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(str(out / name)) for name in names]
    encode = ExampleEncoder(config.max_length, config.max_predictions, spec.pad_id, dynamic)
    per_shard = [0] * num_shards
    counts = {"is_next": 0, "tokens_in_instances": 0, "masked_tokens": 0}
    stats: dict = {}
    try:
        for n, instance in enumerate(create_pretraining_instances(
                corpus, tokenizer, config, seed=seed, fmt=fmt, errors=errors, progress=progress,
                stats=stats, spec=spec)):
            writers[n % num_shards].write(encode(instance))
            per_shard[n % num_shards] += 1
            counts["is_next"] += not instance.is_random_next
            counts["tokens_in_instances"] += len(instance.input_ids)
            counts["masked_tokens"] += len(instance.masked_lm_positions)
    finally:
        for w in writers:
            w.close()
    if stats["instances"] < num_shards:
        logger.warning("only %d instances for %d shards: some shards are empty",
                       stats["instances"], num_shards)

    metadata = {
        "format_version": FORMAT_VERSION,
        "masking": "dynamic" if dynamic else "static",
        "max_length": config.max_length,
        "max_predictions": config.max_predictions,
        "masked_lm_prob": config.masked_lm_prob,
        "whole_word_mask": config.whole_word_mask,
        "short_seq_prob": config.short_seq_prob,
        "dupe_factor": config.dupe_factor,
        "pool_tokens": config.pool_tokens,
        "seed": seed,
        "vocab_size": spec.vocab_size,
        "vocab_file": VOCAB_FILE,
        "special_ids": {"pad": spec.pad_id, "cls": spec.cls_id, "sep": spec.sep_id, "mask": spec.mask_id,
                        "unk": spec.unk_id, "all": sorted(spec.special_ids)},
        "num_instances": stats["instances"],
        "shards": [{"file": name, "instances": k} for name, k in zip(names, per_shard)],
        "counts": {**{k: v for k, v in stats.items() if k != "instances"}, **counts},
        "corpus": corpus,
        "input_format": fmt,
        "errors": errors,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------
def read_metadata(data_dir: str | os.PathLike) -> dict:
    path = Path(data_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {data_dir} is not a complete `bertkit pretrain-data` output directory")
    metadata = json.loads(path.read_text(encoding="utf-8"))
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {metadata.get('format_version')}")
    if "seq_len" in metadata:  # written before the key took the CLI's name (--max-length)
        metadata["max_length"] = metadata.pop("seq_len")
    return metadata


def masking_spec_from_dir(data_dir: str | os.PathLike, metadata: dict | None = None) -> MaskingSpec:
    """The MaskingSpec of a data directory, from its vocab.txt and the special ids in its metadata."""
    metadata = metadata or read_metadata(data_dir)
    tokens = (Path(data_dir) / metadata["vocab_file"]).read_text(encoding="utf-8").split("\n")[:-1]
    ids = metadata["special_ids"]
    return MaskingSpec.from_vocab(tokens, pad_id=ids["pad"], cls_id=ids["cls"], sep_id=ids["sep"],
                                  mask_id=ids["mask"], unk_id=ids["unk"], special_ids=ids["all"])


def feature_spec(seq_len: int, max_predictions: int, dynamic: bool) -> dict:
    spec = {
        "input_ids": tf.io.FixedLenFeature([seq_len], tf.int64),
        "token_type_ids": tf.io.FixedLenFeature([seq_len], tf.int64),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    if not dynamic:
        spec.update({
            "attention_mask": tf.io.FixedLenFeature([seq_len], tf.int64),
            "masked_lm_positions": tf.io.FixedLenFeature([max_predictions], tf.int64),
            "masked_lm_ids": tf.io.FixedLenFeature([max_predictions], tf.int64),
            "masked_lm_weights": tf.io.FixedLenFeature([max_predictions], tf.float32),
        })
    return spec


def load_pretraining_dataset(data_dir: str | os.PathLike, batch_size: int, *, seed: int = 0,
                             shuffle: bool = True, shuffle_buffer: int = 10_000, repeat: bool = False,
                             drop_remainder: bool = True, whole_word_mask: bool | None = None,
                             masked_lm_prob: float | None = None, input_context=None,
                             cycle_length: int = 8) -> tf.data.Dataset:
    """Batches of (features, labels) from a `write_pretraining_data` directory, ready for `model.fit`.

    features: input_ids, token_type_ids, attention_mask int32 [B, S]; masked_lm_positions int32 [B, P].
    labels:   masked_lm_ids int32 [B, P], masked_lm_weights float32 [B, P], next_sentence_labels int32 [B].
    Shards are read in parallel (interleave), records shuffled with `seed` (a new order each epoch,
    the same sequence of orders for the same seed). Dynamic directories are masked per batch with seeds
    from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`: new masks every epoch, the same
    masks for the same seed. whole_word_mask / masked_lm_prob override the metadata for dynamic masking.
    input_context (tf.distribute.InputContext): each input pipeline reads its share of the shards.
    """
    metadata = read_metadata(data_dir)
    seq_len, max_predictions = metadata["max_length"], metadata["max_predictions"]
    dynamic = metadata["masking"] == "dynamic"
    files = [str(Path(data_dir) / s["file"]) for s in metadata["shards"]]
    parse_spec = feature_spec(seq_len, max_predictions, dynamic)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) < input_context.num_input_pipelines:
            raise ValueError(f"{len(files)} shards cannot be split over {input_context.num_input_pipelines} "
                             "input pipelines; write the data again with more (`bertkit pretrain-data --shards N`)")
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, parse_spec)
        return {k: v if v.dtype == tf.float32 else tf.cast(v, tf.int32) for k, v in parsed.items()}

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    if dynamic:
        masking = DynamicMasking(
            masking_spec_from_dir(data_dir, metadata), max_predictions,
            metadata["masked_lm_prob"] if masked_lm_prob is None else masked_lm_prob,
            metadata["whole_word_mask"] if whole_word_mask is None else whole_word_mask)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def mask(batch, batch_seed):
            masked = masking(batch["input_ids"], batch_seed)
            pad_id = metadata["special_ids"]["pad"]
            attention_mask = tf.cast(batch["input_ids"] != pad_id, tf.int32)
            return {**batch, **masked, "attention_mask": attention_mask}

        ds = tf.data.Dataset.zip((ds, seeds)).map(
            mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def split(batch):
        features = {name: batch[name] for name in FEATURE_NAMES}
        labels = {name: batch[name] for name in LABEL_NAMES}
        labels["next_sentence_labels"] = labels["next_sentence_labels"][:, 0]
        return features, labels

    return ds.map(split, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


__all__ = [
    "METADATA_FILE", "DynamicMasking", "ExampleEncoder", "feature_spec", "instance_to_example",
    "load_pretraining_dataset", "masking_spec_from_dir", "read_metadata", "shard_name", "write_pretraining_data",
]
