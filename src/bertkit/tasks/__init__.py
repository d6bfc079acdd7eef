"""Fine-tuning tasks, each described once (task.py) and registered by its module: classify,
regression, multilabel, ner, qa, multiple-choice, embedding.

`finetune` loads TensorFlow when first used; the task classes, `evaluate` and
`predict` do not (the TFLite runtime runs without it).
"""

from . import classify, regression, multilabel, ner, qa, multiple_choice, embedding  # noqa: F401  (registers the built-in tasks, in this order)
from .classify import ClassifyTask  # noqa: F401
from .embedding import EmbeddingTask  # noqa: F401
from .inference import evaluate, predict  # noqa: F401
from .multilabel import MultiLabelTask  # noqa: F401
from .multiple_choice import MultipleChoiceTask  # noqa: F401
from .options import FinetuneOptions  # noqa: F401
from .ner import NerTask  # noqa: F401
from .qa import QaTask  # noqa: F401
from .regression import RegressionTask  # noqa: F401
from .task import TASKS, Task, get_task, register, task_names  # noqa: F401


def __getattr__(name):
    if name == "finetune":
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
