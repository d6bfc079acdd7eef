"""Multiple-choice data: a context (question) and N candidate answers -> the index of the right one.

Readers (every error names `file:line`):
  * JSON Lines, one question per line, in any of three layouts:
      - CommonsenseQA's release files: {"answerKey": "B", "question": {"stem": ..., "choices":
        [{"label": "A", "text": ...}, ...]}}; choices are taken in label order (as the authors'
        BERT baseline does);
      - the Hugging Face `commonsense_qa` dataset rows: {"question": ..., "choices": {"label": [...],
        "text": [...]}, "answerKey": ...};
      - a plain layout: {"question": ..., "choices": [str, ...], "label": 0-based int or a letter}.
    The answer is optional (files to predict on have none).
  * CSV in SWAG's layout (`sent1`, `sent2`, `ending0`..`endingK`, optional `label`): the context is
    `sent1` and choice i is `sent2 + " " + ending_i`, as HF's run_swag builds them.

Featurized as `[CLS] context [SEP] choice [SEP]` per choice, the longer part truncated first, into
int32 [N, C, max_length] arrays (segment 0 for the context, 1 for the choice), as the CommonsenseQA
authors' baseline and HF's BertForMultipleChoice recipes do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np

from .classification import ClassificationExample, featurize_classification, iter_delimited
from .common import iter_text_lines, nonempty

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
_ENDING = re.compile(r"ending(\d+)$")


@dataclasses.dataclass(frozen=True)
class MultipleChoiceExample:
    context: str
    choices: tuple[str, ...]
    label: int | None = None  # index of the right choice
    source: str = ""  # "file:line", for error messages


def read_multiple_choice_file(path: str | os.PathLike, *, same_choice_count: bool = False,
                              has_labels: bool | None = None) -> list[MultipleChoiceExample]:
    """Examples of a JSON Lines file (by suffix .jsonl/.json/.ndjson) or a SWAG-layout CSV.

    `same_choice_count`: every question must have as many choices as the first (training batches
    are [B, C, S]); else counts may differ. `has_labels`: True requires an answer on every line,
    False ignores answers, None takes them when the first example has one (then every one must).
    Raises ValueError naming file:line on malformed rows, unknown answers, fewer than 2 choices,
    a choice count that differs (with `same_choice_count`) and empty files.
    """
    return list(iter_multiple_choice_file(path, same_choice_count=same_choice_count, has_labels=has_labels))


def iter_multiple_choice_file(path: str | os.PathLike, *, same_choice_count: bool = False,
                              has_labels: bool | None = None) -> Iterator[MultipleChoiceExample]:
    """`read_multiple_choice_file`'s examples one at a time, the file read as they are taken (each
    checked against the first; an empty file is the same error, raised at its end)."""
    path = os.fspath(path)
    examples = _iter_jsonl(path) if path.lower().endswith(JSONL_SUFFIXES) else _iter_swag_csv(path)
    first = None
    for e in nonempty(examples, f"{path}: no examples (empty file or header only)"):
        if first is None:
            first = e
            has_labels = e.label is not None if has_labels is None else has_labels
        if not has_labels:
            e = dataclasses.replace(e, label=None)
        elif e.label is None:
            raise ValueError(f"{e.source}: no answer, though {first.source} has one")
        if len(e.choices) < 2:
            raise ValueError(f"{e.source}: {len(e.choices)} choice(s); a question needs at least 2")
        if same_choice_count and len(e.choices) != len(first.choices):
            raise ValueError(f"{e.source}: {len(e.choices)} choices, but {first.source} has "
                             f"{len(first.choices)}; a training file needs the same number for every question")
        yield e


def example_from_json(row, where: str) -> MultipleChoiceExample:
    """One question from a parsed JSON object in any of the layouts of `read_multiple_choice_file`."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    question = row.get("question")
    if isinstance(question, dict):  # CommonsenseQA release: the stem and choices sit under "question"
        context, choices = question.get("stem"), question.get("choices")
    else:
        context, choices = question if question is not None else row.get("context"), row.get("choices")
    if not isinstance(context, str):
        raise ValueError(f"{where}: no question text (a \"question\" string, \"question\": {{\"stem\": ...}} "
                         "or \"context\")")
    texts, letters = _choice_texts(choices, where)
    answer = row.get("answerKey", row.get("label"))
    return MultipleChoiceExample(context, texts, _answer_index(answer, letters, len(texts), where), where)


def _choice_texts(choices, where: str) -> tuple[tuple[str, ...], list[str] | None]:
    """(texts in label order, their labels or None) from a list of strings, a list of
    {"label", "text"} objects, or {"label": [...], "text": [...]}."""
    if isinstance(choices, dict) and isinstance(choices.get("text"), list):
        labels = choices.get("label") or [chr(ord("A") + i) for i in range(len(choices["text"]))]
        choices = [{"label": label, "text": text} for label, text in zip(labels, choices["text"])]
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"{where}: \"choices\" must be a non-empty list")
    if all(isinstance(c, str) for c in choices):
        return tuple(choices), None
    if all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in choices):
        ordered = sorted(choices, key=lambda c: str(c.get("label", "")))
        return tuple(c["text"] for c in ordered), [str(c.get("label", "")) for c in ordered]
    raise ValueError(f"{where}: each choice must be a string or a {{\"label\", \"text\"}} object")


def _answer_index(answer, letters: list[str] | None, count: int, where: str) -> int | None:
    if answer is None or answer == "":
        return None
    if isinstance(answer, bool):
        raise ValueError(f"{where}: answer {answer!r} is not a choice index or label")
    if isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        index = int(answer)
    elif isinstance(answer, str) and letters is not None and answer in letters:
        index = letters.index(answer)
    elif isinstance(answer, str) and len(answer) == 1 and answer.upper() in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        index = ord(answer.upper()) - ord("A")
    else:
        raise ValueError(f"{where}: answer {answer!r} is not a choice index or label")
    if not 0 <= index < count:
        raise ValueError(f"{where}: answer {answer!r} names choice {index}, but there are {count} choices")
    return index


def _iter_jsonl(path: str) -> Iterator[MultipleChoiceExample]:
    with open(path, "rb") as f:
        for where, line in iter_text_lines(f, path):
            if not line.strip():
                continue  # blank lines separate nothing in JSON Lines
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
            yield example_from_json(row, where)


def _iter_swag_csv(path: str) -> Iterator[MultipleChoiceExample]:
    rows = iter_delimited(path, ",", "csv")  # (line, fields) of the non-blank rows; errors name the line
    first = next(rows, None)
    if first is None:
        return
    header_line, header = first
    endings = sorted((int(m.group(1)), i) for i, name in enumerate(header) if (m := _ENDING.match(name)))
    missing = [name for name in ("sent1", "sent2") if name not in header]
    if missing or len(endings) < 2:
        raise ValueError(f"{path}:{header_line}: a multiple-choice CSV needs SWAG's columns sent1, sent2, ending0, "
                         f"ending1, ... (and label); found {', '.join(header)}")
    s1, s2 = header.index("sent1"), header.index("sent2")
    label = header.index("label") if "label" in header else None
    for line, fields in rows:
        where = f"{path}:{line}"
        if len(fields) != len(header):
            raise ValueError(f"{where}: expected {len(header)} columns, found {len(fields)}")
        choices = tuple(f"{fields[s2]} {fields[i]}" for _, i in endings)
        answer = fields[label] if label is not None else None
        yield MultipleChoiceExample(fields[s1], choices, _answer_index(answer, None, len(choices), where), where)


def featurize_multiple_choice(examples: Sequence[MultipleChoiceExample], tokenizer, *,
                              max_length: int = 128) -> dict[str, np.ndarray]:
    """Examples -> {input_ids, token_type_ids, attention_mask: int32 [N, C, max_length],
    choice_mask: int32 [N, C], labels: int32 [N] (when the examples have answers)}.

    C is the largest number of choices; a question with fewer gets empty extra choices whose
    `choice_mask` is 0 (`masked_choice_logits` keeps them from being chosen). Each choice is
    scored on its own sequence, so the padding changes no real choice's score.
    """
    count = max(len(e.choices) for e in examples)
    pairs = [ClassificationExample(text=e.context, text_pair=choice)
             for e in examples for choice in (*e.choices, *[""] * (count - len(e.choices)))]
    flat = featurize_classification(pairs, tokenizer, max_length=max_length)
    features = {k: v.reshape(len(examples), count, -1) for k, v in flat.items()}
    features["choice_mask"] = np.array([[1] * len(e.choices) + [0] * (count - len(e.choices)) for e in examples],
                                       dtype=np.int32)
    labeled = [e.label is not None for e in examples]
    if any(labeled):
        if not all(labeled):
            raise ValueError("some examples have an answer and some do not")
        features["labels"] = np.array([e.label for e in examples], dtype=np.int32)
    return features


def masked_choice_logits(logits: np.ndarray, choice_mask: np.ndarray) -> np.ndarray:
    """Logits [N, C] with the padded choices (mask 0) set to -inf."""
    return np.where(np.asarray(choice_mask, dtype=bool), logits, -np.inf)
