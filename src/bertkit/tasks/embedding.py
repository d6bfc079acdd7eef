"""Sentence embeddings (a text -> a vector whose cosine with another text's says how alike they
are): fine-tunes an embedder as sentence-transformers does, and saves it as a sentence-transformers
folder (modules.json, 1_Pooling, sentence_bert_config.json, and the start model's Dense modules and
Normalize), which `bertkit embed`, `bertkit search`, `SentenceTransformer(dir)` and HF's BertModel load.

Two kinds of training file, TSV/CSV (columns by index or name) or JSON Lines:
  * (anchor, positive) pairs, no score: MultipleNegativesRankingLoss (in-batch negatives, scale 20),
    e.g. question/answer or title/abstract pairs. Defaults: columns 0 and 1, or keys "anchor" and
    "positive" in JSON Lines. `--negative-column` (repeatable) adds hard negatives from the same rows
    (e.g. `--negative-column 2`, or `--negative-column negative` in JSON Lines): every anchor is then
    scored against all positives and all hard negatives of the batch, as sentence-transformers does.
  * scored pairs (`--label-column`): CoSENT (scale 20), e.g. STS-B:

    bertkit finetune embedding --model all-MiniLM-L6-v2 --train sts-train.csv --dev sts-dev.csv \
        --out stsb-embedder --delimiter tab --no-header --text-column 5 --text-pair-column 6 --label-column 4

`--loss mnrl|cosent` overrides the choice. The pooling (mean, cls, ...) and normalisation are the
start model's sentence-transformers settings, else mean pooling without normalisation; texts are cut
at its max_seq_length (else 128) unless `--max-length` is given. The dev metric is the Spearman
correlation of cosine with the scores for a scored dev file (sentence-transformers'
EmbeddingSimilarityEvaluator), else MRR@10 of each anchor's positive among all dev positives.
`predict` reads `text<TAB>text` lines and writes their cosine similarity; `bertkit embed` gives vectors.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..data.classification import (JSONL_SUFFIXES, ClassificationExample, featurize_classification, parse_scores,
                                   read_classification_file)
from ..metrics.regression import regression_metrics
from ..metrics.retrieval import pair_retrieval_metrics
from .classify import FILE_FLAGS
from .task import Task, TaskFlag, register

LOSSES = ("mnrl", "cosent")


@register
class EmbeddingTask(Task):
    name = "embedding"
    architecture = "BertModel"
    head_prefix = ""  # no head: the weights are saved as HF's BertModel names them
    uses_pooler = True  # kept and saved (frozen), as HF's BertModel has it; no pooling mode reads it
    has_labels = False
    label_keys = ("labels",)
    metric = "spearman"  # "mrr@10" when the dev file has no scores (set by `read`)
    report_metrics = ("spearman", "pearson", "mrr@10", "accuracy@1")
    per_token = False
    # In-batch negatives and CoSENT's pair comparisons come from the batch: length-sorted batches
    # would make them unlike sentence-transformers' random ones (in STS-B length follows the genre).
    group_by_length = False
    defaults = {"max_length": 128, "text_column": None, "text_pair_column": None, "label_column": None,
                "negative_column": None, "header": None, "delimiter": None, "quoting": None, "loss": None,
                "scale": 20.0}
    transient = ("delimiter", "quoting")
    blank_prediction = {"similarity": None}
    flags = (*FILE_FLAGS,
             TaskFlag("max_length", "max tokens per text (default: the start model's sentence-transformers "
                                    "max_seq_length, else 128)", int),
             TaskFlag("loss", "in-batch negatives on (anchor, positive) pairs (mnrl) or CoSENT on scored pairs "
                              "(cosent); default: cosent when --label-column gives scores, else mnrl",
                      choices=LOSSES),
             TaskFlag("scale", "the loss's scale, 1 / temperature", float),
             TaskFlag("negative_column", "a hard-negative column for mnrl (name or index; repeat for several; "
                                         "JSON Lines: a key such as 'negative')", kind="repeat"))

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["loss"] not in (None, *LOSSES):
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {self.options['loss']!r}")
        if not self.options["scale"] > 0:
            raise ValueError(f"--scale must be positive, got {self.options['scale']}")

    def fit_lengths(self, config, where=""):
        """A default max_length is the start model's sentence-transformers max_seq_length, when
        `where` is a folder that has one."""
        if "max_length" not in self.given and where and os.path.isdir(where):
            from ..embeddings import read_pooling_config

            self.options["max_length"] = read_pooling_config(where).max_seq_length or self.options["max_length"]
        super().fit_lengths(config, where)

    # === model, loss, files, export ===

    @classmethod
    def model_class(cls):
        from ..model.pooling import BertForSentenceEmbedding

        return BertForSentenceEmbedding

    @classmethod
    def num_outputs(cls, labels):
        return 0  # no head

    @classmethod
    def model_options(cls, path):
        from ..embeddings import read_pooling_config

        found = read_pooling_config(path)
        return {"pooling": found.mode, "normalize": found.normalize, "dense": found.dense}

    @classmethod
    def write_model_files(cls, model, out_dir, raw_config):
        from ..embeddings import PoolingConfig, write_sentence_transformers_files

        length = raw_config.get("bertkit_task_options", {}).get("max_length") or model.config.max_position_embeddings
        layers = model.dense_layers
        write_sentence_transformers_files(out_dir, PoolingConfig(model.pooling, model.normalize, length,
                                                                 tuple(layer.dense_config for layer in layers)),
                                          model.config.hidden_size, [layer.st_weights() for layer in layers])

    def build_loss(self):
        from ..training.losses import CoSENTLoss, MultipleNegativesRankingLoss

        loss = CoSENTLoss if self.options["loss"] == "cosent" else MultipleNegativesRankingLoss
        return loss(scale=self.options["scale"])

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.modules import EncoderModule

        return EncoderModule(model.encoder, tokenizer, max_length=self.options["max_length"],
                             pooling=model.pooling, normalize=model.normalize, dense_layers=model.dense_layers)

    # === data and predictions ===

    def read(self, path, labels=None, train=False):
        o = self.options
        jsonl = str(path).lower().endswith(JSONL_SUFFIXES) and o["delimiter"] is None
        scored = o["label_column"] is not None
        if scored and o["negative_column"]:
            raise ValueError(f"{path}: hard negatives (--negative-column) go with (anchor, positive) pairs and "
                             "mnrl, not with scored pairs (--label-column)")
        examples = read_classification_file(
            path, text_column=_given(o["text_column"], "anchor" if jsonl else 0),
            text_pair_column=_given(o["text_pair_column"], "positive" if jsonl else 1),
            label_column=o["label_column"], has_labels=scored, header=o["header"], delimiter=o["delimiter"],
            quoting=o["quoting"])
        if scored:
            parse_scores(examples)  # a cell that is not a number stops here, naming its line
        negatives = o["negative_column"] or []
        if negatives:
            examples = self._with_negatives(path, examples, [negatives] if isinstance(negatives, str) else negatives)
        if train:
            if o["loss"] is None:
                o["loss"] = "cosent" if scored else "mnrl"
            if o["loss"] == "cosent" and not scored:
                raise ValueError(f"{path}: --loss cosent needs a score per pair; give its column with --label-column")
        else:
            self.metric = "spearman" if scored else "mrr@10"
        return examples

    def _with_negatives(self, path, examples, columns):
        """Each (anchor, positive) example with its hard negatives, read from the same rows
        (`EmbeddingExample.negatives`), so every text of row i stays with row i."""
        o = self.options
        per_column = [read_classification_file(path, text_column=column, has_labels=False, header=o["header"],
                                                delimiter=o["delimiter"], quoting=o["quoting"])
                      for column in columns]
        if any(len(negs) != len(examples) for negs in per_column):
            raise ValueError(f"{path}: the negative columns have other rows than the (anchor, positive) ones")
        return [EmbeddingExample(e.text, e.text_pair, e.label, e.source, tuple(n[i].text for n in per_column))
                for i, e in enumerate(examples)]

    def labels_from(self, examples):
        return None

    def featurize(self, examples, tokenizer, labels):
        """{input_ids, token_type_ids, attention_mask: int32 [N, 2, max_length], labels: float32 [N]}:
        each text of a pair encoded alone (`[CLS] text [SEP]`); labels are the scores, or zeros for
        unscored pairs (whose target is their place in the batch)."""
        width = 2 + len(getattr(examples[0], "negatives", ()))  # anchor, positive, hard negatives
        texts = [ClassificationExample(text) for e in examples
                 for text in (e.text, e.text_pair, *getattr(e, "negatives", ()))]
        flat = featurize_classification(texts, tokenizer, max_length=self.options["max_length"])
        features = {k: v.reshape(len(examples), width, -1) for k, v in flat.items()}
        scored = examples[0].label is not None
        features["labels"] = parse_scores(examples) if scored else np.zeros(len(examples), np.float32)
        return features

    def evaluation_rows(self, examples, features, outputs, labels):
        """Scored pairs: {"scores", "cosine"} [N]; unscored (anchor, positive) pairs: their
        embeddings {"anchors", "positives"} [N, H], as each anchor is ranked against every positive."""
        embeddings = outputs["embeddings"]
        if examples[0].label is None:
            return {"anchors": embeddings[:, 0], "positives": embeddings[:, 1]}
        return {"scores": parse_scores(examples), "cosine": pair_cosine(embeddings)}

    def score_rows(self, rows, labels):
        if "anchors" in rows:
            return pair_retrieval_metrics(rows["anchors"], rows["positives"])
        metrics = regression_metrics(rows["scores"], rows["cosine"])
        return {"spearman": metrics["spearman"], "pearson": metrics["pearson"]}

    def format_predictions(self, examples, features, outputs, labels):
        return [{"similarity": round(float(x), 6)} for x in pair_cosine(outputs["embeddings"])]

    def examples_from_lines(self, lines, sources=None):
        sources = sources or [f"<input>:{i + 1}" for i in range(len(lines))]
        examples = []
        for line, where in zip(lines, sources):
            text, tab, pair = line.partition("\t")
            if not tab or "\t" in pair:
                raise ValueError(f"{where}: give two TAB-separated texts (their cosine similarity is written); "
                                 "for vectors of single texts use `bertkit embed`")
            examples.append(ClassificationExample(text=text, text_pair=pair, source=where))
        return examples


@dataclasses.dataclass(frozen=True)
class EmbeddingExample(ClassificationExample):
    """An (anchor, positive) pair with hard negatives: texts that must score below the positive."""

    negatives: tuple[str, ...] = ()


def pair_cosine(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity [N] of the two texts of each pair, from embeddings [N, 2, H]."""
    from ..embeddings import unit_rows

    unit = unit_rows(embeddings)
    return (unit[:, 0] * unit[:, 1]).sum(axis=-1)


def _given(value, default):
    return default if value is None else value
