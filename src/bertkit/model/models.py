"""Full models: the encoder plus a head. Each takes the same input dict as the encoder.

* BertPretrainer: masked-LM logits at `masked_lm_positions` + next-sentence logits.
* BertForSequenceClassification: logits [B, num_labels] from the pooled output.
* BertForTokenClassification: logits [B, S, num_labels] from the sequence output.
* BertForQuestionAnswering: start_logits, end_logits [B, S] from the sequence output.
* BertForMultipleChoice: logits [B, C] from the pooled output of each (context, choice) pair.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..config import BertConfig
from .encoder import BertEncoder
from .heads import ClassifierHead, MaskedLMHead


@keras.saving.register_keras_serializable(package="bertkit")
class BertPretrainer(keras.Model):
    """Encoder + MLM head (tied decoder) + NSP head.

    Inputs: the encoder's dict plus `masked_lm_positions` [B, P] int32.
    Outputs: mlm_logits [B, P, V] float32, nsp_logits [B, 2] float32, plus the encoder outputs.
    """

    def __init__(self, config: BertConfig, encoder: BertEncoder | None = None, **kwargs):
        kwargs.setdefault("name", "bert_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.encoder = encoder or BertEncoder(config)
        self.encoder.build_weights()
        self.mlm = MaskedLMHead(config, self.encoder.embeddings.word_embeddings, name="mlm")
        self.nsp = ClassifierHead(config, 2, dropout=0.0, name="nsp")

    def build(self, input_shape=None):
        self.encoder.build_weights()
        self.mlm.build()
        self.nsp.build()
        self.built = True

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(BertConfig.from_dict(config["config"]), name=config.get("name"))

    def call(self, inputs, training=False):
        outputs = dict(self.encoder(inputs, training=training))
        positions = inputs["masked_lm_positions"]
        outputs["mlm_logits"] = self.mlm(outputs["sequence_output"], positions)
        outputs["nsp_logits"] = self.nsp(outputs["pooled_output"], training=training)
        return outputs


class _TaskModel(keras.Model):
    """Encoder + one ClassifierHead; subclasses choose the features and shape the output."""

    head_outputs: int | None = None
    uses_pooler = True

    def __init__(self, config: BertConfig, num_labels: int = 2, encoder: BertEncoder | None = None,
                 classifier_dropout: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {num_labels}")
        self.config = config
        self.num_labels = num_labels
        self.classifier_dropout = classifier_dropout
        self.encoder = encoder or BertEncoder(config)
        self.encoder.build_weights()
        # As in HF, token-level heads have no pooler: it gets no gradient, so it is frozen.
        self.encoder.pooler.trainable = self.uses_pooler
        self.head = ClassifierHead(
            config, self.head_outputs or num_labels, dropout=classifier_dropout, task_head=True, name="classifier")

    def build(self, input_shape=None):
        self.encoder.build_weights()
        self.head.build()
        self.built = True

    @classmethod
    def from_pretrained(cls, name_or_path: str, task: str | None = None, labels: list[str] | None = None,
                        num_labels: int | None = None, revision: str | None = None, **config_overrides):
        """This model class from a checkpoint directory or Hub name (bertkit.load_model), as HF's
        `from_pretrained`: a fine-tuned checkpoint of this class keeps its head and labels, any other
        gets a new head of `num_labels` (or len(labels)) outputs. `task` picks among the tasks that
        share this class (classify / regression / multilabel); by default the checkpoint's, else the
        first registered. `config_overrides`: hidden_dropout_prob, attention_probs_dropout_prob."""
        from ..pretrained import load_model, read_config, saved_task
        from ..tasks.task import all_tasks

        if task is None:
            from ..hub import resolve_model_path

            name_or_path = resolve_model_path(name_or_path, revision)
            revision = None
            mine = [name for name, t in all_tasks().items() if t.model_class() is cls]
            saved = saved_task(read_config(name_or_path)[1])
            task = saved if saved in mine else mine[0]
        model = load_model(name_or_path, task=task, labels=labels, num_labels=num_labels,
                           config_overrides=config_overrides or None, revision=revision)
        if not isinstance(model, cls):
            raise ValueError(f"task {task!r} builds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save_pretrained(self, out_dir: str, tokenizer=None, tokenizer_dir: str | None = None) -> str:
        """Writes a HF directory that transformers' class of the same name loads (bertkit.save_model)."""
        from ..pretrained import save_model

        return save_model(self, out_dir, tokenizer=tokenizer, tokenizer_dir=tokenizer_dir)

    def get_config(self):
        """Constructor arguments (Keras serialization, `.keras` files), plus the label names and
        task that loading and saving in the HF layout read (`labels`, `bertkit_task`)."""
        return {"config": self.config.to_dict(), "num_labels": self.num_labels,
                "classifier_dropout": self.classifier_dropout, "name": self.name,
                "labels": getattr(self, "labels", None), "bertkit_task": getattr(self, "bertkit_task", None)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        labels, task = config.pop("labels", None), config.pop("bertkit_task", None)
        model = cls(BertConfig.from_dict(config.pop("config")), **config)
        model.labels = labels
        if task:
            object.__setattr__(model, "bertkit_task", task)
        return model


@keras.saving.register_keras_serializable(package="bertkit")
class BertForSequenceClassification(_TaskModel):
    """Outputs {"logits": [B, num_labels]} from the pooled [CLS] output."""

    def call(self, inputs, training=False):
        pooled = self.encoder(inputs, training=training)["pooled_output"]
        return {"logits": self.head(pooled, training=training)}


@keras.saving.register_keras_serializable(package="bertkit")
class BertForTokenClassification(_TaskModel):
    """Outputs {"logits": [B, S, num_labels]} from the sequence output."""

    uses_pooler = False

    def call(self, inputs, training=False):
        sequence = self.encoder(inputs, training=training)["sequence_output"]
        return {"logits": self.head(sequence, training=training)}


@keras.saving.register_keras_serializable(package="bertkit")
class BertForQuestionAnswering(_TaskModel):
    """Outputs {"start_logits": [B, S], "end_logits": [B, S]} from the sequence output."""

    head_outputs = 2
    uses_pooler = False

    def __init__(self, config: BertConfig, encoder: BertEncoder | None = None, **kwargs):
        kwargs.pop("num_labels", None)
        kwargs.pop("classifier_dropout", None)
        # HF's BertForQuestionAnswering applies no dropout before qa_outputs.
        super().__init__(config, num_labels=2, encoder=encoder, classifier_dropout=0.0, **kwargs)

    def call(self, inputs, training=False):
        sequence = self.encoder(inputs, training=training)["sequence_output"]
        logits = self.head(sequence, training=training)  # [B, S, 2]
        start, end = tf.unstack(logits, axis=-1)
        return {"start_logits": start, "end_logits": end}


@keras.saving.register_keras_serializable(package="bertkit")
class BertForMultipleChoice(_TaskModel):
    """Inputs [B, C, S] (C choices, each a `[CLS] context [SEP] choice [SEP]` sequence); outputs
    {"logits": [B, C]}: one score per choice from its pooled [CLS] output, for a softmax over the
    choices (HF's BertForMultipleChoice: a 1-unit classifier shared by the choices)."""

    head_outputs = 1
    input_rank = 3

    def call(self, inputs, training=False):
        ids = inputs["input_ids"]
        batch, choices = tf.shape(ids)[0], tf.shape(ids)[1]
        flat = {k: tf.reshape(v, [-1, tf.shape(v)[-1]]) for k, v in inputs.items()}  # [B*C, S]
        pooled = self.encoder(flat, training=training)["pooled_output"]
        scores = self.head(pooled, training=training)  # [B*C, 1]
        return {"logits": tf.reshape(scores, [batch, choices])}


def build_task_model(task: str, config: BertConfig, num_labels: int = 2, encoder=None, **model_options):
    """The model for "pretraining" or a fine-tuning task's name (bertkit.tasks registry), with its
    variables created (`model_options`: the task's, see Task.model_options); ValueError for an
    unknown name."""
    if task == "pretraining":
        model = BertPretrainer(config, encoder=encoder)
        model.build()
        return model
    from ..tasks.task import get_task

    return get_task(task).build_model(config, num_labels=num_labels, encoder=encoder, **model_options)
