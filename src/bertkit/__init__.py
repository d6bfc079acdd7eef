"""bertkit: BERT for TensorFlow 2 / Keras 3, from raw text to a served model."""

import os as _os

# Keras 3 must run on TensorFlow; set before keras is first imported.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's pooling (BFC) allocator for CPU tensors instead of malloc: buffers are reused across
# steps instead of being mapped and page-faulted afresh. MiniLM fine-tuning, 30 steps on 2 cores:
# 57.4 -> 48.0 s wall, 13.0 -> 4.9 s in the kernel, 2.7M -> 0.5M page faults (docs/benchmarks.md).
# Read when TensorFlow starts: import bertkit first, or set it yourself.
_os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

__version__ = "0.1.0"

from .config import BertConfig, resolve_config  # noqa: E402
from .pretrained import load_model, load_pretrained, save_model  # noqa: E402

__all__ = ["BertConfig", "resolve_config", "load_pretrained", "load_model", "save_model", "__version__"]
from .tokenizer import load_tokenizer; __all__ += ["load_tokenizer"]  # noqa: E402, E702
from .embeddings import Embedder; __all__ += ["Embedder"]  # noqa: E402, E702
from .fill_mask import FillMask; __all__ += ["FillMask"]  # noqa: E402, E702


def __getattr__(name: str):
    # The Keras model classes import TensorFlow; they load on first use, so `import bertkit` (and the
    # commands that run without TensorFlow) stay light.
    lazy = {"BertTextClassifier": ".model.text_classifier", "BertPreprocessor": ".model.preprocessor",
            "BertTokenClassifier": ".model.keras_tasks", "BertQuestionAnswerer": ".model.keras_tasks",
            "BertMultipleChoice": ".model.keras_tasks",
            "BertEncoder": ".model.encoder"}
    if name in lazy:
        import importlib

        from .tf_start import quiet_tensorflow_start

        quiet_tensorflow_start()
        return getattr(importlib.import_module(lazy[name], __name__), name)
    raise AttributeError(f"module 'bertkit' has no attribute {name!r}")
