"""Starting TensorFlow quietly, for the commands and engines that need it."""

from __future__ import annotations

import os


def quiet_tensorflow_start() -> None:
    """Imports TensorFlow and initialises its devices with stderr muted: its C++ start-up lines
    (oneDNN notice, missing CUDA drivers on a CPU machine) are printed before any log level applies.
    Cheap after the first call."""
    import sys

    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.config.list_logical_devices()
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_logical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
