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
from collections.abc import Sequence

import numpy as np

from .classification import ClassificationExample, featurize_classification, read_delimited
from .common import read_text_lines

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
    path = os.fspath(path)
    if path.lower().endswith(JSONL_SUFFIXES):
        examples = _read_jsonl(path)
    else:
        examples = _read_swag_csv(path)
    if not examples:
        raise ValueError(f"{path}: no examples (empty file or header only)")
    if has_labels is None:
        has_labels = examples[0].label is not None
    if not has_labels:
        examples = [dataclasses.replace(e, label=None) for e in examples]
    for e in examples:
        if has_labels and e.label is None:
            raise ValueError(f"{e.source}: no answer, though {examples[0].source} has one")
        if len(e.choices) < 2:
            raise ValueError(f"{e.source}: {len(e.choices)} choice(s); a question needs at least 2")
        if same_choice_count and len(e.choices) != len(examples[0].choices):
            raise ValueError(f"{e.source}: {len(e.choices)} choices, but {examples[0].source} has "
                             f"{len(examples[0].choices)}; a training file needs the same number for every question")
    return examples


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


def _read_jsonl(path: str) -> list[MultipleChoiceExample]:
    examples = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue  # blank lines separate nothing in JSON Lines
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
        examples.append(example_from_json(row, where))
    return examples


def _read_swag_csv(path: str) -> list[MultipleChoiceExample]:
    rows = read_delimited(path, ",", "csv")  # (line, fields) of the non-blank rows; errors name the line
    if not rows:
        return []
    header = rows[0][1]
    endings = sorted((int(m.group(1)), i) for i, name in enumerate(header) if (m := _ENDING.match(name)))
    missing = [name for name in ("sent1", "sent2") if name not in header]
    if missing or len(endings) < 2:
        raise ValueError(f"{path}:{rows[0][0]}: a multiple-choice CSV needs SWAG's columns sent1, sent2, ending0, "
                         f"ending1, ... (and label); found {', '.join(header)}")
    s1, s2 = header.index("sent1"), header.index("sent2")
    label = header.index("label") if "label" in header else None
    examples = []
    for line, fields in rows[1:]:
        where = f"{path}:{line}"
        if len(fields) != len(header):
            raise ValueError(f"{where}: expected {len(header)} columns, found {len(fields)}")
        choices = tuple(f"{fields[s2]} {fields[i]}" for _, i in endings)
        answer = fields[label] if label is not None else None
        examples.append(MultipleChoiceExample(fields[s1], choices, _answer_index(answer, None, len(choices), where),
                                              where))
    return examples


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
