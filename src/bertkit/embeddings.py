"""Sentence embeddings: texts -> float32 vectors, as sentence-transformers computes them.

A sentence-transformers model folder (all-MiniLM-L6-v2, LaBSE and the like) is read as it is:
`modules.json` lists the modules, `1_Pooling/config.json` the pooling mode,
`sentence_bert_config.json` the max_seq_length, `Dense` modules project the pooled vector (a
linear layer and an activation, e.g. LaBSE's 768 -> 768 tanh) and a `Normalize` module
L2-normalises. Any other checkpoint (bertkit, HF, Google) embeds with mean pooling and no
normalisation unless told otherwise. Other modules that change the vectors are refused with a clear
error rather than skipped.

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
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .data.classification import ClassificationExample, featurize_classification
from .data.common import INFERENCE_BATCH_SIZE
from .pretrained import read_config
from .tokenizer import load_tokenizer

log = logging.getLogger("bertkit")

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")  # computed by model/pooling.py
# The modules bertkit applies, in the order it applies them (a folder listing them in another order
# is refused): the encoder, pooling, any number of Dense projections, L2 normalisation.
ST_MODULE_TYPES = ("Transformer", "Pooling", "Dense", "Normalize")
# sentence-transformers saves a Dense activation as the torch class's full name (its `fullname`).
DENSE_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity", "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu", "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.modules.activation.GELU": "gelu", "torch.nn.modules.activation.SiLU": "silu",
}
EMBED_CHUNK_LINES = 4096  # lines held in memory at once by `iter_embeddings`


@dataclasses.dataclass(frozen=True)
class DenseConfig:
    """One sentence-transformers Dense module: y = activation(x W^T + b), plus x (or x R^T when
    the widths differ) with `use_residual`; x float32 [B, in_features] -> y [B, out_features].

    path: its folder (config.json and model.safetensors with `linear.weight` [out, in],
    `linear.bias` [out], `residual.weight` [out, in]); activation: a key of DENSE_ACTIVATIONS.
    """

    path: str
    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "torch.nn.modules.activation.Tanh"  # sentence-transformers' default
    use_residual: bool = False

    def weights(self) -> dict[str, np.ndarray]:
        """The module's tensors, checked against its config; ValueError naming the file otherwise."""
        from safetensors.numpy import load_file

        file = os.path.join(self.path, "model.safetensors")
        if not os.path.exists(file):
            pickled = os.path.join(self.path, "pytorch_model.bin")
            hint = (" (only pytorch_model.bin: bertkit never unpickles; load the folder in sentence-transformers "
                    "and save it again, which writes safetensors)") if os.path.exists(pickled) else ""
            raise FileNotFoundError(f"{file}: the Dense module's weights are missing{hint}")
        tensors = load_file(file)
        expected = {"linear.weight": (self.out_features, self.in_features)}
        if self.bias:
            expected["linear.bias"] = (self.out_features,)
        if self.use_residual and self.in_features != self.out_features:
            expected["residual.weight"] = (self.out_features, self.in_features)
        for name, shape in expected.items():
            if name not in tensors or tuple(tensors[name].shape) != shape:
                found = tuple(tensors[name].shape) if name in tensors else "missing"
                raise ValueError(f"{file}: {name} should have shape {shape} (config.json), found {found}")
        return {name: tensors[name].astype(np.float32) for name in expected}


@dataclasses.dataclass(frozen=True)
class PoolingConfig:
    """How token vectors become one sentence vector.

    mode: one of POOLING_MODES; dense: Dense projections applied to the pooled vector, in order;
    normalize: L2-normalise the result; max_seq_length: pieces kept per text ([CLS] and [SEP]
    included), None for the model's max_position_embeddings.
    """

    mode: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None
    dense: tuple[DenseConfig, ...] = ()

    def dimension(self, hidden_size: int) -> int:
        """Width of the sentence vector: the last Dense module's, else the encoder's."""
        return self.dense[-1].out_features if self.dense else hidden_size

    def dense_key(self) -> str:
        """The Dense modules' part of a cache key ("" without any): their configs and weights."""
        return "".join(f":dense={dense_digest(d)}" for d in self.dense)


def read_pooling_config(model_dir: str) -> PoolingConfig:
    """The pooling of a model folder: sentence-transformers' files if present, else mean pooling.

    Raises ValueError naming the file for a module bertkit does not apply (or one out of the
    Transformer, Pooling, Dense..., Normalize order), a pooling config with no mode or several, a
    Dense config bertkit cannot compute, or unreadable JSON.
    """
    modules_file = os.path.join(model_dir, "modules.json")
    if not os.path.exists(modules_file):
        return PoolingConfig()
    modules = _read_json(modules_file)
    mode, normalize, dense, last = "mean", False, [], -1
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in ST_MODULE_TYPES:
            raise ValueError(f"{modules_file}: module {module.get('type')!r} ({module.get('path')}) is not "
                             f"supported; bertkit applies {', '.join(ST_MODULE_TYPES)}")
        rank = ST_MODULE_TYPES.index(kind)
        if rank < last or (rank == last and kind != "Dense"):
            raise ValueError(f"{modules_file}: module {kind} ({module.get('path')}) comes after "
                             f"{ST_MODULE_TYPES[last]}; bertkit applies them in the order {', '.join(ST_MODULE_TYPES)}")
        last = rank
        folder = os.path.join(model_dir, module.get("path", ""))
        if kind == "Pooling":
            mode = _pooling_mode(os.path.join(folder, "config.json"))
        elif kind == "Dense":
            dense.append(_dense_config(folder))
        normalize = normalize or kind == "Normalize"
    return PoolingConfig(mode, normalize, _max_seq_length(model_dir), tuple(dense))


def _max_seq_length(model_dir: str) -> int | None:
    """sentence_bert_config.json's max_seq_length (sentence-transformers before v6), else the
    tokenizer's model_max_length (where v6 keeps it), else None. Values beyond any model's
    positions (transformers' "no limit" sentinel) count as none."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        path = os.path.join(model_dir, name)
        value = _read_json(path).get(key) if os.path.exists(path) else None
        if isinstance(value, int) and 0 < value <= 1_000_000:
            return value
    return None


def _dense_config(folder: str) -> DenseConfig:
    path = os.path.join(folder, "config.json")
    config = _read_json(path)
    activation = config.get("activation_function", "torch.nn.modules.activation.Tanh")
    if activation not in DENSE_ACTIVATIONS:
        raise ValueError(f"{path}: activation_function {activation!r} is not supported; bertkit computes "
                         f"{', '.join(sorted(DENSE_ACTIVATIONS))}")
    for key in ("module_input_name", "module_output_name"):
        if config.get(key, "sentence_embedding") != "sentence_embedding":
            raise ValueError(f"{path}: {key} {config[key]!r}: bertkit applies Dense to the sentence embedding only")
    try:
        return DenseConfig(folder, int(config["in_features"]), int(config["out_features"]), bool(config.get("bias", True)),
                           activation, bool(config.get("use_residual", False)))
    except KeyError as e:
        raise ValueError(f"{path}: no {e.args[0]}") from None


POOLING_FLAGS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
                 "max": "pooling_mode_max_tokens", "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}


def write_sentence_transformers_files(out_dir: str, pooling: PoolingConfig, hidden_size: int,
                                      dense_weights: Sequence[dict[str, np.ndarray]] = ()) -> None:
    """Writes the files that make `out_dir` (a HF BertModel folder) a sentence-transformers model:
    modules.json (Transformer, Pooling, the Dense modules of `pooling.dense` with their tensors
    `dense_weights` (DenseConfig.weights' names and shapes), and Normalize when
    `pooling.normalize`), their folders and sentence_bert_config.json, as sentence-transformers
    saves them."""
    from safetensors.numpy import save_file

    from .files import write_atomically

    def write_json(path, value):
        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(value, f, indent=2)
                f.write("\n")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, write)

    if len(dense_weights) != len(pooling.dense):
        raise ValueError(f"{len(pooling.dense)} Dense modules but {len(dense_weights)} sets of weights")
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")]
    write_json(os.path.join(out_dir, "1_Pooling", "config.json"),
               {"word_embedding_dimension": hidden_size,
                **{flag: mode == pooling.mode for mode, flag in POOLING_FLAGS.items()}})
    for dense, tensors in zip(pooling.dense, dense_weights):
        folder = f"{len(modules)}_Dense"
        modules.append((folder, "Dense"))
        write_json(os.path.join(out_dir, folder, "config.json"),
                   {"in_features": dense.in_features, "out_features": dense.out_features, "bias": dense.bias,
                    "activation_function": dense.activation,
                    **({"use_residual": True} if dense.use_residual else {})})
        write_atomically(os.path.join(out_dir, folder, "model.safetensors"),
                         lambda tmp, tensors=tensors: save_file({k: np.ascontiguousarray(v, np.float32)
                                                                 for k, v in tensors.items()}, tmp))
    if pooling.normalize:
        modules.append((f"{len(modules)}_Normalize", "Normalize"))
        os.makedirs(os.path.join(out_dir, modules[-1][0]), exist_ok=True)
    write_json(os.path.join(out_dir, "sentence_bert_config.json"),
               {"max_seq_length": pooling.max_seq_length, "do_lower_case": False})
    write_json(os.path.join(out_dir, "modules.json"),  # last: it is what marks the folder as one
               [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
                for i, (path, kind) in enumerate(modules)])


def dense_digest(dense: DenseConfig) -> str:
    """sha256 of a Dense module's config and weights (part of the converted model's cache key)."""
    import hashlib

    from .files import hash_file

    file = os.path.join(dense.path, "model.safetensors")
    if not os.path.exists(file):
        dense.weights()  # raises, naming the file
    digest = hashlib.sha256(repr(dataclasses.replace(dense, path="")).encode())
    hash_file(digest, file)
    return digest.hexdigest()[:16]


# sentence-transformers v6 names the mode in one key, "pooling_mode" (a name, or a list for modes
# concatenated); earlier versions set one pooling_mode_* flag (POOLING_FLAGS). Both are read.
POOLING_NAMES = {"cls": "cls", "mean": "mean", "max": "max", "mean_sqrt_len_tokens": "mean_sqrt_len"}


def _pooling_mode(path: str) -> str:
    config = _read_json(path)
    if "pooling_mode" in config:
        named = config["pooling_mode"]
        named = named[0] if isinstance(named, list) and len(named) == 1 else named
        if not isinstance(named, str) or named not in POOLING_NAMES:
            raise ValueError(f"{path}: pooling_mode {named!r} is not supported; bertkit computes one of "
                             f"{', '.join(POOLING_NAMES)}")
        return POOLING_NAMES[named]
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
                                     length, found.dense)
        self.model_dir, self.batch_size = model_dir, batch_size
        self.tokenizer = load_tokenizer(model_dir)
        self.runtime, self.precision = pick_runtime(runtime, precision)
        self._forward = self._load_forward()
        self.dimension = self.pooling.dimension(self.config.hidden_size)

    def _build(self):
        from .tf_start import quiet_tensorflow_start

        quiet_tensorflow_start()  # before any module that imports TensorFlow
        from .model.pooling import SentenceEmbedder
        from .pretrained import load_pretrained

        return SentenceEmbedder(load_pretrained(self.model_dir, self.config), self.pooling.mode,
                                self.pooling.normalize, dense=self.pooling.dense)

    def _load_forward(self):
        if self.runtime == "tflite":
            from .tasks.lite import lite_forward

            variant = f"embed:{self.pooling.mode}:{self.pooling.normalize}{self.pooling.dense_key()}"
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
