"""Fine-tuning tasks: sequence classification, token classification (NER), extractive QA."""

from .base import FinetuneOptions, evaluate, finetune, predict  # noqa: F401
from .classify import ClassifyTask
from .ner import NerTask
from .qa import QaTask

TASKS = {"classify": ClassifyTask, "ner": NerTask, "qa": QaTask}
