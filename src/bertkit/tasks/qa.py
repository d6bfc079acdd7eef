"""Extractive question answering: SQuAD v1.1 / v2.0 JSON in, official EM / F1 out."""

from __future__ import annotations

from ..data.squad import SquadExample, answers_by_id, featurize_squad, postprocess_squad, read_squad
from ..metrics.squad import best_null_threshold, squad_v1_metrics, squad_v2_metrics
from .task import MAX_LENGTH_FLAG, Task, TaskFlag, register


@register
class QaTask(Task):
    name = "qa"
    architecture = "BertForQuestionAnswering"
    head_prefix = "qa_outputs."
    uses_pooler = False
    has_labels = False
    label_keys = ("start_positions", "end_positions")
    metric = "f1"
    report_metrics = ("f1", "exact_match")
    per_token = True
    defaults = {"max_length": 384, "doc_stride": 128, "max_query_length": 64, "max_answer_length": 30,
                "n_best_size": 20, "version_2": False, "null_score_diff_threshold": 0.0,
                "skip_bad_answers": False, "articles": None}
    transient = ("skip_bad_answers", "articles")
    blank_prediction = {"answer": None, "start": None, "end": None, "score": None}
    flags = (MAX_LENGTH_FLAG,
             TaskFlag("doc_stride", "stride between context windows", int),
             TaskFlag("max_query_length", "max question tokens", int),
             TaskFlag("articles", "only these SQuAD articles, e.g. 0-29 or 3,5"),
             TaskFlag("skip_bad_answers", "skip (with a warning) answers whose text is not at answer_start",
                      kind="switch"))
    serving_signatures = {"qa": "serving_default"}
    whole_file_scoring = True  # the official SQuAD evaluation takes every question at once
    # The options the exported module takes (the rest are about training data).
    export_options = ("max_length", "doc_stride", "max_query_length", "max_answer_length", "n_best_size",
                      "version_2", "null_score_diff_threshold")

    @classmethod
    def model_class(cls):
        from ..model.models import BertForQuestionAnswering

        return BertForQuestionAnswering

    @classmethod
    def build_model(cls, config, num_labels=2, encoder=None):
        model = cls.model_class()(config, encoder=encoder)  # always 2 outputs: start and end
        model.build()
        return cls.mark(model)

    @classmethod
    def build_loss(cls):
        from ..training.losses import SpanLoss

        return SpanLoss()

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.qa import QaModule

        return QaModule(model, tokenizer, **{k: self.options[k] for k in self.export_options})

    def read(self, path, labels=None, train=False):
        articles = self.options["articles"]
        examples = read_squad(path, skip_bad_answers=self.options["skip_bad_answers"],
                              articles=parse_articles(articles))
        if any(e.is_impossible for e in examples):
            self.options["version_2"] = True
        return examples

    def labels_from(self, examples):
        return None

    def featurize(self, examples, tokenizer, labels):
        o = self.options
        return featurize_squad(examples, tokenizer, max_length=o["max_length"], doc_stride=o["doc_stride"],
                               max_query_length=o["max_query_length"])

    def answers(self, examples, features, outputs, null_score_diff_threshold=None):
        o = self.options
        threshold = o["null_score_diff_threshold"] if null_score_diff_threshold is None else null_score_diff_threshold
        return postprocess_squad(examples, features, outputs["start_logits"], outputs["end_logits"],
                                 n_best_size=o["n_best_size"], max_answer_length=o["max_answer_length"],
                                 version_2=o["version_2"], null_score_diff_threshold=threshold)

    def score(self, examples, features, outputs, labels):
        if not self.options["version_2"]:
            predictions = {qid: r["answer"] for qid, r in self.answers(examples, features, outputs).items()}
            return squad_v1_metrics(answers_by_id(examples), predictions)
        # One decoding serves both: the best spans with their null score diffs give the answers at
        # the saved threshold (postprocess_squad's rule) and the official threshold search.
        spans, diffs = self._spans_and_diffs(examples, features, outputs)
        limit = self.options["null_score_diff_threshold"]
        predictions = {q: r["answer"] if diffs[q] <= limit else "" for q, r in spans.items()}
        threshold, best_f1 = self._null_search(examples, spans, diffs)
        return {**squad_v2_metrics(answers_by_id(examples), predictions), "best_f1": best_f1,
                "best_f1_thresh": threshold}

    def _spans_and_diffs(self, examples, features, outputs) -> tuple[dict, dict]:
        """Each question's best non-null span and its null score diff (null - span; inf without a span)."""
        spans = self.answers(examples, features, outputs, null_score_diff_threshold=float("inf"))
        diffs = {q: r["null_score"] - r["score"] if r["start"] >= 0 else float("inf") for q, r in spans.items()}
        return spans, diffs

    @staticmethod
    def _null_search(examples, spans: dict, diffs: dict) -> tuple[float, float]:
        """(threshold, F1) of the official v2.0 best_f1_thresh search over these spans and diffs."""
        return best_null_threshold(answers_by_id(examples), {q: r["answer"] for q, r in spans.items()}, diffs)

    def calibrate(self, examples, features, outputs, labels) -> dict:
        """SQuAD 2.0: the null score diff threshold with the best dev F1 (the official script's
        best_f1_thresh), saved with the model for evaluate, predict and the export."""
        if not self.options["version_2"]:
            return {}
        spans, diffs = self._spans_and_diffs(examples, features, outputs)
        return {"null_score_diff_threshold": self._null_search(examples, spans, diffs)[0]}

    def format_predictions(self, examples, features, outputs, labels, probability: bool = False):
        """{answer, start, end, score} per question, in example order; with `probability`, also the
        answer's probability among the candidate spans (what the export serves)."""
        results = self.answers(examples, features, outputs)
        return [{"answer": r["answer"], "start": r["start"], "end": r["end"], "score": round(float(r["score"]), 4),
                 **({"probability": round(float(r["probability"]), 4)} if probability else {})}
                for r in (results[e.qid] for e in examples)]

    @classmethod
    def format_served(cls, outputs, n, labels):
        # The export also gives the answer's probability among the candidate spans.
        return [{"answer": outputs["answer"][i].decode("utf-8"), "start": int(outputs["start"][i]),
                 "end": int(outputs["end"][i]), "score": round(float(outputs["score"][i]), 4),
                 "probability": round(float(outputs["probability"][i]), 4)} for i in range(n)]

    def examples_from_items(self, kind, items):
        if kind != "qa":
            raise ValueError(f"qa takes (question, context) pairs, not {kind}")
        return [SquadExample(qid=str(i), question=q, context=c) for i, (q, c) in enumerate(items)]

    def format_served_predictions(self, examples, features, outputs, labels):
        return self.format_predictions(examples, features, outputs, labels, probability=True)

    def examples_from_lines(self, lines, sources=None):
        sources = sources or [f"<input>:{i + 1}" for i in range(len(lines))]
        examples = []
        for i, (line, where) in enumerate(zip(lines, sources)):
            question, sep, context = line.partition("\t")
            if not sep:
                raise ValueError(f"{where}: expected 'question<TAB>context'")
            examples.append(SquadExample(qid=str(i), question=question, context=context))
        return examples


def parse_articles(spec):
    """'0-29' -> slice(0, 30); '3,5' -> [3, 5]; None -> all articles."""
    if spec is None or isinstance(spec, (slice, list, range)):
        return spec
    spec = str(spec)
    if "-" in spec:
        first, last = spec.split("-")
        return slice(int(first), int(last) + 1)
    return [int(x) for x in spec.split(",")]
