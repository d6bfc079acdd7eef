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
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from ..data.common import MODEL_INPUT_KEYS
from ..files import hash_file, write_atomically

log = logging.getLogger("bertkit")

# Part of the cache key: change it when the converted graph changes for the same weights.
CONVERSION_FORMAT = "bertkit-tflite-2"
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


# Positions per interpreter call, by weight precision: a larger batch runs as several calls of
# about this many tokens. BERT's activations at 32 x 128 (the [B, N, S, S] attention scores: 25 MB
# for MiniLM) outgrow the CPU caches, and the element-wise passes between the matmuls then run at
# memory speed. int8 models, whose activations are also quantized and packed per call, gain from
# smaller pieces than float32 ones. Sweeps of MiniLM on a 2-core Xeon with AMX
# (benchmarks/lite_calls.py, docs/benchmarks.md): float32 fastest at 512-1,024 positions per call,
# int8 at 128-192. Rows are independent (int8 activations are quantized per row), so outputs are
# unchanged.
TOKENS_PER_CALL = {"fp32": 512, "int8": 128}
# The calls of one batch run on up to this many interpreters side by side, each on its share of
# the CPUs (two single-thread interpreters on two cores: MiniLM int8 1.12-1.23x faster at lengths
# 16-128 than one interpreter on both cores, whose threads meet at a barrier after every op).
# Each interpreter holds its own copy of the packed weights (+24 MiB for MiniLM int8), hence a cap.
MAX_WORKERS = 4


class LiteForward:
    """Calls a converted model: {input name: int32 [B, S]} -> {output name: float32 [B, ...]}.

    Any [B, S] (or [B, choices, S]) is taken: the interpreter resizes its tensors when the shape
    changes (cheap, no recompilation). A batch of more than `tokens_per_call` positions runs as
    several calls of whole rows, as even as possible, shared among `workers` interpreters that run
    side by side (MAX_WORKERS); a batch of one call runs on one interpreter using all `threads`.
    Interpreters are created on first use. `threads` defaults to the CPUs this process may run on.
    Not thread-safe: one call at a time (bertkit's server holds a lock around it).
    """

    def __init__(self, flatbuffer: bytes, threads: int | None = None,
                 tokens_per_call: int = TOKENS_PER_CALL["fp32"], workers: int | None = None):
        self.flatbuffer = flatbuffer
        self.threads = threads or len(os.sched_getaffinity(0))
        self.workers = max(1, min(workers or MAX_WORKERS, self.threads))
        self.tokens_per_call = tokens_per_call
        self._whole = None  # the interpreter of single-call batches
        self._side_by_side = None  # (runners, thread pool or None for one) once a batch is split

    def new_runner(self, threads: int):
        """The serving signature of a fresh interpreter of this model on `threads` threads."""
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self.flatbuffer, num_threads=threads)
        return interpreter.get_signature_runner("serving_default")

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = {k: np.ascontiguousarray(inputs[k], dtype=np.int32) for k in MODEL_INPUT_KEYS}
        rows = len(arrays["input_ids"])
        row_tokens = max(int(np.prod(arrays["input_ids"].shape[1:])), 1)
        calls = -(-rows * row_tokens // self.tokens_per_call)  # ceil
        if calls > 1:  # a whole number of calls per interpreter
            calls = -(-calls // self.workers) * self.workers
        calls = min(max(calls, 1), max(rows, 1))
        if calls == 1:
            return self._whole_runner()(**arrays)
        bounds = np.linspace(0, rows, calls + 1).round().astype(int)
        pieces = [{k: v[a:b] for k, v in arrays.items()} for a, b in zip(bounds[:-1], bounds[1:])]
        runners, pool = self._interpreters_side_by_side()
        shares = [share for share in np.array_split(np.arange(calls), len(runners)) if len(share)]

        def run(runner, share):
            return [runner(**pieces[i]) for i in share]

        # The interpreters release the GIL while they run; this thread runs the first share.
        later = [pool.submit(run, runner, share) for runner, share in zip(runners[1:], shares[1:])]
        try:
            outputs = run(runners[0], shares[0])
        finally:  # never return (or raise) while another thread still uses an interpreter
            wait(later)
        for future in later:
            outputs += future.result()
        return {name: np.concatenate([out[name] for out in outputs]) for name in outputs[0]}

    def _whole_runner(self):
        if self._whole is None:
            self._whole = self.new_runner(self.threads)
        return self._whole

    def _interpreters_side_by_side(self):
        if self._side_by_side is None:
            n = self.workers
            if n == 1:  # one interpreter on every CPU: the single-call one, no second copy of the weights
                self._side_by_side = ([self._whole_runner()], None)
            else:
                runners = [self.new_runner(self.threads // n + (i < self.threads % n)) for i in range(n)]
                self._side_by_side = (runners, ThreadPoolExecutor(n - 1, thread_name_prefix="bertkit-tflite"))
        return self._side_by_side


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
        return LiteForward(path.read_bytes(), tokens_per_call=TOKENS_PER_CALL[precision])
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
    return LiteForward(flatbuffer, tokens_per_call=TOKENS_PER_CALL[precision])
