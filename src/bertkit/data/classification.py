"""Sequence classification data: TSV / CSV / JSON Lines readers, label lists, featurizer.

Columns are chosen by name (needs a header) or by 0-based index (negative counts from the end);
GLUE files work with column flags only, see `GLUE_COLUMNS`. TSV is split on tabs with no quote
handling (MRPC has unbalanced `"`), CSV uses the csv module's standard quoting. Files may carry a
BOM and CRLF endings. Every error names `file:line`.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from .common import doc_spans, iter_text_lines, make_dataset, nonempty, pad_rows  # noqa: F401  (make_dataset re-exported)

log = logging.getLogger("bertkit.data")

Column = str | int

# The flags that read the GLUE files in shared/data (README of the data folder).
GLUE_COLUMNS: dict[str, dict] = {
    "sst2": {"text_column": "sentence", "label_column": "label"},
    "cola": {"text_column": 3, "label_column": 1, "header": False},
    "mrpc": {"text_column": "#1 String", "text_pair_column": "#2 String", "label_column": "Quality"},
    # regression; the .csv files are TAB-separated, some rows carry 2 attribution fields more
    "stsb": {"text_column": 5, "text_pair_column": 6, "label_column": 4, "header": False, "delimiter": "tab"},
}
DELIMITERS = {"tab": "\t", "comma": ","}
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclasses.dataclass(frozen=True)
class ClassificationExample:
    text: str
    text_pair: str | None = None
    label: str | None = None
    source: str = ""  # "file:line", for error messages


def parse_column(spec: Column | None) -> Column | None:
    """A column flag as given on the command line: "3" or "-1" -> index, anything else -> name."""
    if isinstance(spec, str) and re.fullmatch(r"-?\d+", spec.strip()):
        return int(spec)
    return spec


# --- readers -------------------------------------------------------------------------------------

def read_classification_file(path: str | os.PathLike, *, text_column: Column | None = None,
                             text_pair_column: Column | None = None,
                             label_column: Column | None = None, has_labels: bool = True,
                             header: bool | None = None, delimiter: str | None = None,
                             quoting: str | None = None,
                             label_list: Sequence[str] | None = None) -> list[ClassificationExample]:
    """Read a TSV/CSV (by delimiter or suffix: .csv -> comma, else tab) or JSON Lines file, or a
    folder with one subfolder per class (`read_class_folders`).

    `delimiter`: "tab", "comma" (or the character itself); None chooses by suffix. `quoting`:
    "csv" (fields may be wrapped in `"` with inner quotes doubled, as GoEmotions writes them) or
    "none" (split on the delimiter only, as MRPC needs); None: "csv" for commas, "none" for tabs.
    Defaults: TSV/CSV text column 0 and label column -1 (the last); JSON Lines keys "text" and
    "label". `has_labels=False` reads no label. Rows must have as many fields as the first row,
    except that with every column given by a non-negative index longer rows are read and their
    extra fields ignored, with a warning (STS-B's attribution fields). `header=None` detects a header row: there is one if
    any column is given by name; with indices only, see `_detect_header` (the guess is printed as a
    warning; pass header=True/False to decide).
    Raises ValueError (with file:line) on empty files, rows with the wrong number of columns,
    unknown column names and (when `label_list` is given) unknown labels.
    """
    examples = list(iter_classification_file(path, text_column=text_column, text_pair_column=text_pair_column,
                                             label_column=label_column, has_labels=has_labels, header=header,
                                             delimiter=delimiter, quoting=quoting, label_list=label_list))
    if label_list is not None and has_labels:
        encode_labels(examples, label_list)  # raises on the first unknown label, counting them all
    return examples


def iter_classification_file(path: str | os.PathLike, *, text_column: Column | None = None,
                             text_pair_column: Column | None = None,
                             label_column: Column | None = None, has_labels: bool = True,
                             header: bool | None = None, delimiter: str | None = None,
                             quoting: str | None = None,
                             label_list: Sequence[str] | None = None) -> Iterator[ClassificationExample]:
    """`read_classification_file`'s examples one at a time, reading the file as it goes: memory
    does not grow with the file (TSV/CSV/JSON Lines; a folder of files is listed first). A header
    guess (`header=None` with columns by index) reads the label column once before the examples;
    `label_list` serves that guess only: labels are not checked here (`encode_labels` does). The
    same errors as `read_classification_file`, raised when the reader reaches the line."""
    path = os.fspath(path)
    delimiter = DELIMITERS.get(delimiter, delimiter)
    if os.path.isdir(path):
        examples: Iterable[ClassificationExample] = read_class_folders(path, has_labels)
    elif path.lower().endswith(JSONL_SUFFIXES) and delimiter is None:
        examples = _iter_jsonl(path, text_column, text_pair_column, label_column, has_labels)
    else:
        if delimiter is None:
            delimiter = "," if path.lower().endswith(".csv") else "\t"
        if quoting not in (None, "csv", "none"):
            raise ValueError(f"quoting must be 'csv' or 'none', got {quoting!r}")
        quoting = quoting or ("none" if delimiter == "\t" else "csv")
        cols = [parse_column(c) for c in (text_column, text_pair_column, label_column)]
        examples = _rows_to_examples(path, lambda: iter_delimited(path, delimiter, quoting), *cols, has_labels,
                                     header, label_list)
    yield from nonempty(examples, f"{path}: no examples (empty file or header only)")


def read_class_folders(path: str, has_labels: bool = True) -> list[ClassificationExample]:
    """The folder-per-class layout (`imdb/train/pos/*.txt`, as `keras.utils.text_dataset_from_directory`
    reads it): each subfolder is a label, each file in it one example, its whole UTF-8 text (a final
    newline removed). Files are taken in natural order (`2_x.txt` before `10_x.txt`); files beside the
    subfolders and hidden files are ignored. Raises ValueError naming the folder when it has no
    subfolder with files, or the file that is not UTF-8.
    """
    classes = sorted(d for d in os.listdir(path) if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))
    examples = []
    for label in classes:
        folder = os.path.join(path, label)
        for name in sorted((n for n in os.listdir(folder) if not n.startswith(".")), key=_natural_key):
            file = os.path.join(folder, name)
            if not os.path.isfile(file):
                continue
            try:
                with open(file, encoding="utf-8-sig", newline="") as f:
                    text = f.read()
            except UnicodeDecodeError as e:
                raise ValueError(f"{file}: not valid UTF-8 (byte {e.start})") from None
            text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
            examples.append(ClassificationExample(text=text, label=label if has_labels else None, source=file))
    if not examples:
        raise ValueError(f"{path}: a folder of examples needs one subfolder per class holding the text files "
                         "(e.g. train/pos/*.txt, train/neg/*.txt)")
    return examples


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def read_delimited(path: str, delimiter: str, quoting: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank rows: a plain split, or the csv module's quoting."""
    return list(iter_delimited(path, delimiter, quoting))


def iter_delimited(path: str, delimiter: str, quoting: str) -> Iterator[tuple[int, list[str]]]:
    """`read_delimited`'s rows one at a time, the file read as they are taken."""
    with open(path, "rb") as f:
        lines = (text for _, text in iter_text_lines(f, path))
        if quoting == "none":
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield number, line.split(delimiter)
            return
        # The csv module joins a quoted field's lines itself; each line is given back its "\n".
        reader = csv.reader((line + "\n" for line in lines), delimiter=delimiter, strict=True)
        line_end = 0
        try:
            for fields in reader:
                start, line_end = line_end + 1, reader.line_num
                if any(f.strip() for f in fields):
                    yield start, fields
        except csv.Error as e:
            raise ValueError(f"{path}:{reader.line_num}: {e}") from None


def _rows_to_examples(path, open_rows: Callable[[], Iterator[tuple[int, list[str]]]], text_col, pair_col,
                      label_col, has_labels, header, label_list) -> Iterator[ClassificationExample]:
    """The examples of the rows `open_rows()` yields (called twice when the header is guessed)."""
    rows = open_rows()
    first = next(rows, None)
    if first is None:
        return
    text_col = 0 if text_col is None else text_col
    label_col = (-1 if label_col is None else label_col) if has_labels else None
    specs = [c for c in (text_col, pair_col, label_col) if c is not None]
    if header is None:
        header = _detect_header(path, first, (fields for _, fields in open_rows()), specs, label_col, label_list)
    names = first[1] if header else None
    width = len(first[1])
    text_i, pair_i, label_i = (None if c is None else _column_index(path, first[0], c, names, width)
                               for c in (text_col, pair_col, label_col))
    if len({i for i in (text_i, pair_i, label_i) if i is not None}) < len(specs):
        raise ValueError(f"{path}: text, text-pair and label columns must differ")
    # Longer rows are read only with every column a non-negative index (STS-B's attribution fields
    # trail its 7); with names or end-relative indices an extra field is an error.
    ragged_ok = all(isinstance(c, int) and c >= 0 for c in specs)
    longer, first_longer = 0, None
    for line, fields in rows if header else itertools.chain([first], rows):
        if len(fields) != width and not (ragged_ok and len(fields) > width):
            raise ValueError(f"{path}:{line}: expected {width} columns, found {len(fields)}")
        if len(fields) > width:
            longer, first_longer = longer + 1, first_longer or line
        yield ClassificationExample(
            text=fields[text_i],
            text_pair=None if pair_i is None else fields[pair_i],
            label=None if label_i is None else fields[label_i].strip(),
            source=f"{path}:{line}")
    if longer:
        log.warning("%s:%d: %d rows have more than the first row's %d fields; their extra fields are "
                    "ignored", path, first_longer, longer, width)


# Label-column names that mark a first row as a header when the file does not say.
HEADER_WORDS = frozenset({"label", "labels", "class", "category", "target", "sentiment", "y", "gold_label",
                          "tag", "score", "quality", "rating", "polarity", "emotion", "topic"})


def _detect_header(path, first, all_fields: Iterator[list[str]], specs, label_col, label_list) -> bool:
    """Whether the first row, `first` (line, fields), is a header, when the caller did not say
    (header=None); `all_fields` gives the fields of every row, the first included.

    Columns given by name need one. Otherwise the first row is a header only when its label cell is
    a column name (`HEADER_WORDS`), or is not a number while every other row's label is one; a rare
    label on line 1 is data, never eaten. The guess and its reason go to stderr (a warning).
    """
    if any(isinstance(c, str) for c in specs):
        return True
    if label_col is None:
        return False
    first_line, first = first
    try:
        first_label = first[label_col].strip()
    except IndexError:
        return False  # reported as a column error later
    numeric = re.compile(r"-?\d+(\.\d*)?")

    def others_numeric() -> bool:  # reads the label column of the whole file: only when needed
        others = (f[label_col].strip() for f in itertools.islice(all_fields, 1, None) if -len(f) <= label_col < len(f))
        seen = False
        for x in others:
            if not numeric.fullmatch(x):
                return False
            seen = True
        return seen

    if label_list is not None and first_label in label_list:
        reason, is_header = f"its label cell {first_label!r} is one of the model's labels", False
    elif first_label.lower() in HEADER_WORDS:
        reason, is_header = f"its label cell {first_label!r} is a column name", True
    elif not numeric.fullmatch(first_label) and others_numeric():
        reason, is_header = f"its label cell {first_label!r} is not a number and every other label is", True
    else:
        reason, is_header = f"its label cell {first_label!r} looks like a label", False
    log.warning("%s:%d: read as %s (%s); pass --header or --no-header to decide", path, first_line,
                "a header" if is_header else "data", reason)
    return is_header


def _column_index(path: str, line: int, spec: Column, names: list[str] | None, width: int) -> int:
    if isinstance(spec, str):
        if names is None:
            raise ValueError(f"{path}: column {spec!r} given by name, but the file has no header")
        stripped = [n.strip() for n in names]
        if spec.strip() not in stripped:
            raise ValueError(f"{path}:{line}: no column {spec!r} in the header {names}")
        return stripped.index(spec.strip())
    if not -width <= spec < width:
        raise ValueError(f"{path}:{line}: column index {spec} out of range for {width} columns")
    return spec % width


def _iter_jsonl(path, text_key, pair_key, label_key, has_labels) -> Iterator[ClassificationExample]:
    text_key = "text" if text_key is None else parse_column(text_key)
    label_key = ("label" if label_key is None else parse_column(label_key)) if has_labels else None
    pair_key = parse_column(pair_key)
    with open(path, "rb") as f:
        yield from (_json_example(where, line, text_key, pair_key, label_key)
                    for where, line in iter_text_lines(f, path) if line.strip())


def _json_example(where, line, text_key, pair_key, label_key) -> ClassificationExample:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: invalid JSON ({e.msg})") from None
    text, pair, label = (None if k is None else _json_field(row, k, where) for k in (text_key, pair_key, label_key))
    for name, value in (("text", text), ("text pair", pair)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: {name} must be a string, got {type(value).__name__}")
    return ClassificationExample(text, pair, None if label is None else str(label), where)


def _json_field(row, key: Column, where: str):
    try:
        return row[key]
    except (KeyError, IndexError, TypeError):
        have = sorted(row) if isinstance(row, dict) else f"a {type(row).__name__}"
        raise ValueError(f"{where}: no field {key!r} (row has {have})") from None


# --- labels --------------------------------------------------------------------------------------

def infer_label_list(examples: Sequence[ClassificationExample]) -> list[str]:
    """The sorted distinct labels: numerically if all are integers ("2" < "10"), else as strings."""
    labels = {e.label for e in examples if e.label is not None}
    if labels and all(re.fullmatch(r"-?\d+", label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def read_class_weights(path: str, label_list: Sequence[str]) -> dict[str, float]:
    """{label: weight} from a JSON object or from `label<TAB>weight` lines (blank lines and `#`
    comments skipped). Every label of `label_list` needs a positive weight; ValueError naming the
    file (and line) for a bad or missing weight or an unknown label."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    weights: dict[str, tuple[str, object]] = {}  # label -> (where, value)
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        weights = {str(k): (path, v) for k, v in raw.items()}
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            label, tab, value = line.rstrip("\r").rpartition("\t")
            if not tab:
                raise ValueError(f"{path}:{n}: expected 'label<TAB>weight', got {line[:60]!r}")
            weights[label] = (f"{path}:{n}", value)
    out = {}
    for label, (where, value) in weights.items():
        if label not in label_list:
            raise ValueError(f"{where}: label {label!r} is not in the training data's labels {list(label_list)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number > 0 or number == float("inf"):
            raise ValueError(f"{where}: the weight of {label!r} must be a positive number, got {value!r}")
        out[label] = number
    missing = [label for label in label_list if label not in out]
    if missing:
        raise ValueError(f"{path}: no weight for the label(s) {missing}")
    return out


def encode_labels(examples: Sequence[ClassificationExample], label_list: Sequence[str]) -> np.ndarray:
    """Label ids [N] int32; ValueError naming file:line of the first label not in `label_list`."""
    index = {label: i for i, label in enumerate(label_list)}
    unknown = [e for e in examples if e.label not in index]
    if unknown:
        first = unknown[0]
        raise ValueError(f"{first.source}: unknown label {first.label!r} "
                         f"({len(unknown)} rows with labels not in {list(label_list)})")
    return np.array([index[e.label] for e in examples], dtype=np.int32)


def parse_scores(examples: Sequence[ClassificationExample]) -> np.ndarray:
    """Regression targets: each label cell as a finite float, float32 [N]; ValueError naming
    file:line of the first cell that is not a number."""
    scores = np.empty(len(examples), dtype=np.float32)
    for i, e in enumerate(examples):
        try:
            scores[i] = value = float(e.label)
        except (TypeError, ValueError):
            value = None
        if value is None or not np.isfinite(value):
            raise ValueError(f"{e.source}: the score {e.label!r} is not a number (regression reads real-valued "
                             "labels; choose the score column with --label-column)")
    return scores


# --- features ------------------------------------------------------------------------------------

def featurize_classification(examples: Sequence[ClassificationExample], tokenizer, *,
                             label_list: Sequence[str] | None = None,
                             max_length: int = 128) -> dict[str, np.ndarray]:
    """Examples -> {input_ids, token_type_ids, attention_mask: int32 [N, max_length], labels: [N]}.

    `[CLS] text [SEP] (pair [SEP])`, the longer of text/pair truncated first, right-padded with
    the tokenizer's pad id (cut the padding per batch with `make_dataset(bucket=True)`).
    `labels` is present when the examples have labels; `label_list` is then required so that
    train and dev use the same ids.
    """
    has_pair = [e.text_pair is not None for e in examples]
    if any(has_pair) and not all(has_pair):
        raise ValueError("some examples have a text pair and some do not")
    encodings = tokenizer.encode_batch(
        [e.text for e in examples], pairs=[e.text_pair for e in examples] if any(has_pair) else None,
        add_special_tokens=True, max_length=max_length, truncation="longest_first", padding=False)
    features = {
        "input_ids": pad_rows([list(enc.ids) for enc in encodings], max_length, tokenizer.pad_id),
        "token_type_ids": pad_rows([list(enc.type_ids) for enc in encodings], max_length, 0),
        "attention_mask": pad_rows([[1] * len(enc.ids) for enc in encodings], max_length, 0),
    }
    labeled = [e.label is not None for e in examples]
    if any(labeled):
        if not all(labeled):
            raise ValueError("some examples have a label and some do not")
        if label_list is None:
            raise ValueError("examples have labels: pass label_list (e.g. infer_label_list(train))")
        features["labels"] = encode_labels(examples, label_list)
    return features


def featurize_windows(examples: Sequence[ClassificationExample], tokenizer, *, max_length: int = 128,
                      doc_stride: int = 128) -> dict[str, np.ndarray]:
    """Examples -> one row per window: {input_ids, token_type_ids, attention_mask: int32
    [W, max_length], example_index: int32 [W]} (row w is a window of example `example_index[w]`).

    Single texts: a text of more than max_length - 2 pieces is cut into windows of max_length - 2
    pieces whose starts are `doc_stride` pieces apart, the last ending at the text's end (the SQuAD
    document windows of google-research/bert, `doc_spans`); each row is `[CLS] window [SEP]`.
    Text pairs: the first text is kept in every row (its first `pair_first_length(max_length)`
    pieces, half the room) and the second is read in windows of what is left, as SQuAD keeps the
    question and windows the context: `[CLS] text [SEP] window [SEP]`, token types 0 then 1.
    An input that fits gives one row, the same as `featurize_classification`. Targets are per
    example: index them with `example_index` to train on windows.
    Raises ValueError when some examples are pairs and some are not.
    """
    has_pair = [e.text_pair is not None for e in examples]
    if any(has_pair) and not all(has_pair):
        raise ValueError("some examples have a text pair and some do not")
    if max_length < 3 + any(has_pair):
        raise ValueError(f"max_length {max_length} leaves no room for text between [CLS] and [SEP]")
    rows, types, owners = [], [], []
    cls, sep = tokenizer.cls_id, tokenizer.sep_id
    for i, e in enumerate(examples):
        pieces = tokenizer.encode(e.text, add_special_tokens=False).ids
        if e.text_pair is None:
            for start, length in doc_spans(len(pieces), max_length - 2, doc_stride):
                rows.append([cls, *pieces[start:start + length], sep])
                types.append([0] * (length + 2))
                owners.append(i)
            continue
        first = pieces[:pair_first_length(max_length)]
        second = tokenizer.encode(e.text_pair, add_special_tokens=False).ids
        for start, length in doc_spans(len(second), max_length - 3 - len(first), doc_stride):
            rows.append([cls, *first, sep, *second[start:start + length], sep])
            types.append([0] * (len(first) + 2) + [1] * (length + 1))
            owners.append(i)
    return {"input_ids": pad_rows(rows, max_length, tokenizer.pad_id),
            "token_type_ids": pad_rows(types, max_length, 0),
            "attention_mask": pad_rows([[1] * len(r) for r in rows], max_length, 0),
            "example_index": np.asarray(owners, dtype=np.int32)}


def pair_first_length(max_length: int) -> int:
    """Pieces of a pair's first text kept in each document window: half of the room that
    `[CLS] A [SEP] B [SEP]` leaves, so the windows over the second text get at least the other half."""
    return (max_length - 3) // 2


WINDOW_POOLS = ("mean", "max")


def pool_windows(logits: np.ndarray, example_index: np.ndarray, examples: int, mode: str = "mean") -> np.ndarray:
    """Per-example outputs [N, ...] from per-window ones [W, ...]: the mean, or the elementwise max,
    of each example's windows' logits (`mode`: WINDOW_POOLS)."""
    if mode not in WINDOW_POOLS:
        raise ValueError(f"window pooling must be one of {WINDOW_POOLS}, got {mode!r}")
    logits = np.asarray(logits, dtype=np.float32)
    if mode == "max":
        out = np.full((examples, *logits.shape[1:]), -np.inf, dtype=np.float32)
        np.maximum.at(out, example_index, logits)
        return out
    out = np.zeros((examples, *logits.shape[1:]), dtype=np.float32)
    np.add.at(out, example_index, logits)
    counts = np.bincount(example_index, minlength=examples).astype(np.float32)
    return out / counts.reshape(-1, *[1] * (logits.ndim - 1))
