"""bertkit: BERT for TensorFlow 2 / Keras 3, from raw text to a served model."""

import os as _os

# Keras 3 must run on TensorFlow; set before keras is first imported.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from .config import BertConfig, resolve_config  # noqa: E402
from .pretrained import load_model, load_pretrained, save_model  # noqa: E402

__all__ = ["BertConfig", "resolve_config", "load_pretrained", "load_model", "save_model", "__version__"]
from .tokenizer import load_tokenizer; __all__ += ["load_tokenizer"]  # noqa: E402, E702
