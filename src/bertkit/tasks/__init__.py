"""Fine-tuning tasks: sequence classification, token classification (NER), extractive QA.

`finetune` and `FinetuneOptions` load TensorFlow when first used; the task classes, `evaluate` and
`predict` do not (the TFLite runtime runs without it).
"""

from .classify import ClassifyTask
from .inference import evaluate, predict  # noqa: F401
from .ner import NerTask
from .qa import QaTask

TASKS = {"classify": ClassifyTask, "ner": NerTask, "qa": QaTask}


def __getattr__(name):
    if name in ("finetune", "FinetuneOptions"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
