"""The TFLite runtime of the inference engine: a fine-tuned model run by the TFLite interpreter.

On CPUs the TFLite interpreter's XNNPACK kernels run BERT faster than TensorFlow's graph mode
(MiniLM on a 2-core Zen 3: 4,000 AG News texts in 36-40 s of forward passes against 51-53 s, same
batches; docs/benchmarks.md), with the same float32 arithmetic: logits agree to ~2e-6. The model
is converted once per weights file (~8 s for MiniLM) with [batch, seq] left dynamic, and the
flatbuffer is cached under `cache_dir()`, keyed by a hash of config.json and the weights, so later
runs start at once and never load the Keras model.

The interpreter is LiteRT's (`ai_edge_litert`, the package TensorFlow names as the successor of
`tf.lite.Interpreter`): it runs without importing TensorFlow, which saves `bertkit predict` the
7 s that importing TensorFlow takes on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
from pathlib import Path

import numpy as np

from ..data.common import MODEL_INPUT_KEYS
from ..files import hash_file, write_atomically

log = logging.getLogger("bertkit")

# Part of the cache key: change it when the converted graph changes for the same weights.
CONVERSION_FORMAT = "bertkit-tflite-1"
WEIGHT_SUFFIXES = (".safetensors",)
# What the matmul weights of a converted model are stored as (bertkit.export.tflite).
PRECISIONS = ("fp32", "int8")


def check_precision(precision: str) -> str:
    """`precision` if it is one of PRECISIONS, else ValueError naming the flag."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cache_dir() -> Path:
    """Where converted models are kept: $BERTKIT_CACHE, else $XDG_CACHE_HOME/bertkit, else
    ~/.cache/bertkit (as huggingface_hub keeps ~/.cache/huggingface)."""
    if os.environ.get("BERTKIT_CACHE"):
        return Path(os.environ["BERTKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bertkit"


def model_digest(model_dir: str, variant: str = "") -> str:
    """sha256 of what fixes the converted graph: the conversion format, the TensorFlow version,
    `variant` (what is built on the weights, e.g. a pooling mode), config.json and the weight files
    (by content, so a copied directory reuses the entry)."""
    version = importlib.metadata.version("tensorflow")  # the converter's; read without importing TF
    digest = hashlib.sha256(f"{CONVERSION_FORMAT}\0{version}\0{variant}\0".encode())
    names = sorted(n for n in os.listdir(model_dir) if n == "config.json" or n.endswith(WEIGHT_SUFFIXES))
    for name in names:
        digest.update(name.encode() + b"\0")
        hash_file(digest, os.path.join(model_dir, name))
    return digest.hexdigest()


# Positions per interpreter call: a larger batch runs as several calls of about this many tokens.
# BERT's activations at 32 x 128 (the [B, N, S, S] attention scores: 25 MB for MiniLM) outgrow the
# CPU caches, and the element-wise passes between the matmuls then run at memory speed. In pieces
# of 512 positions MiniLM's int8 forward ran 1.11-1.55x faster at lengths 32-512 (32 x 128: 354 ->
# 228 ms), float32 1.07-1.17x (2-core Xeon with AMX; benchmarks/lite_calls.py, docs/benchmarks.md).
# Rows are independent (int8 activations are quantized per row), so outputs are unchanged.
TOKENS_PER_CALL = 512


class LiteForward:
    """Calls a converted model: {input name: int32 [B, S]} -> {output name: float32 [B, ...]}.

    Any [B, S] (or [B, choices, S]) is taken: the interpreter resizes its tensors when the shape
    changes (cheap, no recompilation). A batch of more than `tokens_per_call` positions runs as
    several calls of whole rows, as even as possible (TOKENS_PER_CALL). Uses every CPU this process
    may run on.
    """

    def __init__(self, flatbuffer: bytes, threads: int | None = None, tokens_per_call: int = TOKENS_PER_CALL):
        from ai_edge_litert.interpreter import Interpreter

        threads = threads or len(os.sched_getaffinity(0))
        self.interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        self.tokens_per_call = tokens_per_call

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = {k: np.ascontiguousarray(inputs[k], dtype=np.int32) for k in MODEL_INPUT_KEYS}
        rows = len(arrays["input_ids"])
        row_tokens = max(int(np.prod(arrays["input_ids"].shape[1:])), 1)
        calls = -(-rows * row_tokens // self.tokens_per_call)  # ceil
        calls = min(max(calls, 1), max(rows, 1))
        if calls == 1:
            return self.runner(**arrays)
        bounds = np.linspace(0, rows, calls + 1).round().astype(int)
        pieces = [self.runner(**{k: v[a:b] for k, v in arrays.items()}) for a, b in zip(bounds[:-1], bounds[1:])]
        return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}


def cached_model_path(model_dir: str, variant: str = "", precision: str = "fp32") -> Path:
    """Where `lite_forward` keeps the converted model of these weights, `variant` and `precision`."""
    if precision != "fp32":  # fp32 keeps the keys of caches written before precisions existed
        variant = f"{variant}:{precision}"
    return cache_dir() / "tflite" / f"{model_digest(model_dir, variant)}.tflite"


def lite_forward(model_dir: str, load_model, variant: str = "", precision: str = "fp32") -> LiteForward:
    """The TFLite forward of a model directory, converted on the first call for these weights (and
    `variant` and `precision`) and cached. `load_model()` gives the Keras model (the task model, or
    e.g. an encoder with pooling, named by `variant`) when a conversion is needed. `precision`:
    "fp32", or "int8" for dynamic-range int8 weights (bertkit.export.tflite).

    Raises: tf.lite's ConverterError if the model cannot be converted with builtin ops.
    A cache that cannot be written costs a conversion per run (a warning says so), not an error.
    """
    path = cached_model_path(model_dir, variant, precision)
    if path.is_file():
        log.info("TFLite model from the cache: %s", path)
        return LiteForward(path.read_bytes())
    log.info("converting %s to TFLite, %s (once for these weights)", model_dir, precision)
    model = load_model()  # first: it starts TensorFlow quietly
    from ..export.tflite import tflite_flatbuffer

    flatbuffer = tflite_flatbuffer(model, precision=precision)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or absent, also when two processes convert at once (each writes its own side file).
        write_atomically(str(path), lambda tmp: Path(tmp).write_bytes(flatbuffer))
    except OSError as e:
        log.warning("could not cache the TFLite model in %s (%s); set BERTKIT_CACHE to a writable "
                    "directory to skip the conversion next time", path.parent, e)
    return LiteForward(flatbuffer)
