"""Sentence embeddings: texts -> float32 vectors, as sentence-transformers computes them.

A sentence-transformers model folder (all-MiniLM-L6-v2 and the like) is read as it is:
`modules.json` lists the modules, `1_Pooling/config.json` the pooling mode,
`sentence_bert_config.json` the max_seq_length, and a `Normalize` module L2-normalises. Any other
checkpoint (bertkit, HF, Google) embeds with mean pooling and no normalisation unless told
otherwise. Dense or other modules that change the vectors are refused with a clear error rather
than skipped.

    embedder = Embedder("all-MiniLM-L6-v2/")
    vectors = embedder.encode(["A man is eating food.", "Someone eats."])   # float32 [2, 384]

Rows are sorted by length and batched as `predict` does (tasks/inference.run_model), on the same
runtimes: TFLite (XNNPACK; converted once per model and pooling, cached) on CPUs, else TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Iterator

import numpy as np

from .data.classification import ClassificationExample, featurize_classification
from .data.common import INFERENCE_BATCH_SIZE
from .pretrained import read_config
from .tokenizer import load_tokenizer

log = logging.getLogger("bertkit")

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")  # computed by model/pooling.py
ST_MODULE_TYPES = {"Transformer", "Pooling", "Normalize"}
EMBED_CHUNK_LINES = 4096  # lines held in memory at once by `iter_embeddings`


@dataclasses.dataclass(frozen=True)
class PoolingConfig:
    """How token vectors become one sentence vector.

    mode: one of POOLING_MODES; normalize: L2-normalise the result; max_seq_length: pieces kept
    per text ([CLS] and [SEP] included), None for the model's max_position_embeddings.
    """

    mode: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None


def read_pooling_config(model_dir: str) -> PoolingConfig:
    """The pooling of a model folder: sentence-transformers' files if present, else mean pooling.

    Raises ValueError naming the file for a module bertkit does not apply (e.g. Dense), a pooling
    config with no mode or several, or unreadable JSON.
    """
    modules_file = os.path.join(model_dir, "modules.json")
    if not os.path.exists(modules_file):
        return PoolingConfig()
    modules = _read_json(modules_file)
    mode, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in ST_MODULE_TYPES:
            raise ValueError(f"{modules_file}: module {module.get('type')!r} ({module.get('path')}) is not "
                             f"supported; bertkit applies {', '.join(sorted(ST_MODULE_TYPES))}")
        if kind == "Pooling":
            mode = _pooling_mode(os.path.join(model_dir, module.get("path", ""), "config.json"))
        normalize = normalize or kind == "Normalize"
    max_seq_length = None
    st_config = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(st_config):
        max_seq_length = _read_json(st_config).get("max_seq_length")
    return PoolingConfig(mode, normalize, max_seq_length)


POOLING_FLAGS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
                 "max": "pooling_mode_max_tokens", "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}


def write_sentence_transformers_files(out_dir: str, pooling: PoolingConfig, hidden_size: int) -> None:
    """Writes the files that make `out_dir` (a HF BertModel folder) a sentence-transformers model:
    modules.json (Transformer, Pooling, and Normalize when `pooling.normalize`),
    1_Pooling/config.json and sentence_bert_config.json, as sentence-transformers saves them."""
    from .files import write_atomically

    def write_json(path, value):
        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(value, f, indent=2)
                f.write("\n")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, write)

    modules = [("", "Transformer"), ("1_Pooling", "Pooling")] + ([("2_Normalize", "Normalize")] if pooling.normalize else [])
    write_json(os.path.join(out_dir, "1_Pooling", "config.json"),
               {"word_embedding_dimension": hidden_size,
                **{flag: mode == pooling.mode for mode, flag in POOLING_FLAGS.items()}})
    if pooling.normalize:
        os.makedirs(os.path.join(out_dir, "2_Normalize"), exist_ok=True)
    write_json(os.path.join(out_dir, "sentence_bert_config.json"),
               {"max_seq_length": pooling.max_seq_length, "do_lower_case": False})
    write_json(os.path.join(out_dir, "modules.json"),  # last: it is what marks the folder as one
               [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
                for i, (path, kind) in enumerate(modules)])


def _pooling_mode(path: str) -> str:
    config = _read_json(path)
    flags = POOLING_FLAGS
    chosen = [mode for mode, key in flags.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in flags.values()]
    if len(chosen) != 1 or others:
        raise ValueError(f"{path}: bertkit needs exactly one of {', '.join(flags.values())}; "
                         f"this config sets {chosen + others or 'none'}")
    return chosen[0]


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


class Embedder:
    """Sentence embeddings of a model folder.

    Args:
      model_dir: a sentence-transformers folder, or any bertkit / HF / Google checkpoint directory,
        or a Hugging Face Hub name ("sentence-transformers/all-MiniLM-L6-v2"; see `bertkit.hub`).
      pooling, normalize, max_length: override the folder's pooling mode, normalisation and
        max_seq_length (pieces per text, [CLS] and [SEP] included).
      runtime: "auto" (TFLite on CPUs, TensorFlow where it sees a GPU), "tflite" or "tensorflow".
      precision: "fp32"; "int8" (dynamic-range int8 weights on the TFLite runtime; cosine to the
        fp32 embeddings >= 0.99 on real sentences, docs/benchmarks.md); or "auto" (default): int8
        where the CPU has int8 dot-product units, else fp32 (bertkit.cpu). `.precision` says which.
      batch_size: texts per forward pass (sorted by length first).
      revision: branch, tag or commit of a Hub repo.
    Raises: ValueError for an unknown pooling mode, runtime or precision (int8 with runtime
      "tensorflow"), or a length above the model's
      max_position_embeddings; FileNotFoundError / bertkit.hub.HubError for a missing model.

    Example:
      >>> embedder = bertkit.Embedder("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
      >>> embedder.encode(["a cat sat", "a dog ran"]).shape  # float32 [texts, hidden]  # doctest: +SKIP
      (2, 384)
    """

    def __init__(self, model_dir: str, pooling: str | None = None, normalize: bool | None = None,
                 max_length: int | None = None, runtime: str = "auto", batch_size: int = INFERENCE_BATCH_SIZE,
                 revision: str | None = None, precision: str = "auto"):
        from .hub import resolve_model_path
        from .tasks.inference import pick_runtime

        model_dir = resolve_model_path(model_dir, revision)
        found = read_pooling_config(model_dir)
        if pooling is not None and pooling not in POOLING_MODES:
            raise ValueError(f"--pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        self.config = read_config(model_dir)[0]
        length = self.config.fit_length(max_length, found.max_seq_length or self.config.max_position_embeddings,
                                        "--max-length", model_dir)
        self.pooling = PoolingConfig(pooling or found.mode, found.normalize if normalize is None else normalize,
                                     length)
        self.model_dir, self.batch_size = model_dir, batch_size
        self.tokenizer = load_tokenizer(model_dir)
        self.runtime, self.precision = pick_runtime(runtime, precision)
        self._forward = self._load_forward()
        self.dimension = self.config.hidden_size

    def _build(self):
        from .tf_start import quiet_tensorflow_start

        quiet_tensorflow_start()  # before any module that imports TensorFlow
        from .model.pooling import SentenceEmbedder
        from .pretrained import load_pretrained

        return SentenceEmbedder(load_pretrained(self.model_dir, self.config), self.pooling.mode,
                                self.pooling.normalize)

    def _load_forward(self):
        if self.runtime == "tflite":
            from .tasks.lite import lite_forward

            variant = f"embed:{self.pooling.mode}:{self.pooling.normalize}"
            return lite_forward(self.model_dir, self._build, variant=variant, precision=self.precision)
        from .tasks.inference import graph_forward

        return graph_forward(self._build())

    def encode(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), hidden_size], row i for texts[i] (an empty text embeds [CLS] [SEP],
        as in sentence-transformers)."""
        from .tasks.inference import run_model

        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts")
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        features = featurize_classification([ClassificationExample(text) for text in texts], self.tokenizer,
                                            max_length=self.pooling.max_seq_length)
        outputs = run_model(self._forward, features, per_token=False, batch_size=self.batch_size)
        return outputs["sentence_embedding"].astype(np.float32, copy=False)

    def iter_encode(self, lines: Iterable[str], chunk_lines: int = EMBED_CHUNK_LINES) -> Iterator[np.ndarray]:
        """Embeddings of `lines` in chunks ([<= chunk_lines, H] each), in order, one row per line."""
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= chunk_lines:
                yield self.encode(chunk)
                chunk = []
        if chunk:
            yield self.encode(chunk)


def cosine_scores(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Cosine similarity [Q, N] between query rows [Q, H] and corpus rows [N, H]."""
    return unit_rows(queries) @ unit_rows(corpus).T


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each vector (the last axis) scaled to length 1, float32; a zero vector stays zero."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


SEARCH_CHUNK_ROWS = 65536  # corpus rows scored at once: memory stays [Q, chunk] whatever the corpus


def semantic_search(queries: np.ndarray, corpus: np.ndarray, top_k: int = 10) -> list[list[tuple[int, float]]]:
    """Exact cosine search: for each query row [Q, H], the `top_k` corpus rows [N, H] as
    (row index, cosine) pairs, best first (ties: lower index first), as
    sentence_transformers.util.semantic_search returns them. Corpus rows are scored in chunks of
    SEARCH_CHUNK_ROWS, so memory stays bounded; numpy exact search is fine up to about a million
    rows, beyond that use an approximate index (e.g. FAISS) on these vectors."""
    if top_k < 1:
        raise ValueError(f"top_k must be positive, got {top_k}")
    queries, corpus = unit_rows(queries), np.asarray(corpus, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(corpus), SEARCH_CHUNK_ROWS):
        scores = queries @ unit_rows(corpus[start:start + SEARCH_CHUNK_ROWS]).T
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        best_rows = np.concatenate([best_rows, rows], axis=1)
        keep = np.lexsort((best_rows, -best_scores), axis=1)[:, :top_k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_rows = np.take_along_axis(best_rows, keep, axis=1)
    return [[(int(r), float(s)) for r, s in zip(rows, scores)] for rows, scores in zip(best_rows, best_scores)]
