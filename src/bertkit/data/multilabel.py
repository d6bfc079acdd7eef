"""Multi-label classification data: a label cell holds a set of labels ("0,15" in GoEmotions).

Rows are read by the classification readers (data/classification.py); this module splits the
label cells, names the labels (from a `--label-names` file whose line i names id i, as GoEmotions'
`emotions.txt`) and encodes the sets as multi-hot targets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .classification import ClassificationExample
from .common import read_text_lines

LABEL_SEPARATOR = ","


def split_labels(example: ClassificationExample) -> list[str]:
    """The labels of one example's cell ("0,15" -> ["0", "15"]); ValueError naming file:line for an
    empty cell or an empty item."""
    items = [item.strip() for item in (example.label or "").split(LABEL_SEPARATOR)]
    if not example.label or not all(items):
        raise ValueError(f"{example.source}: the label cell {example.label!r} is not a comma-separated list of labels")
    return items


def read_label_names(path: str) -> list[str]:
    """Label names, one per line (line i names label id i); blank lines are an error, duplicates too."""
    names = [line.strip() for line in read_text_lines(path)]
    while names and not names[-1]:
        names.pop()  # a trailing newline
    for i, name in enumerate(names):
        if not name:
            raise ValueError(f"{path}:{i + 1}: empty label name")
        if name in names[:i]:
            raise ValueError(f"{path}:{i + 1}: label name {name!r} repeats line {names.index(name) + 1}")
    if not names:
        raise ValueError(f"{path}: no label names")
    return names


def name_labels(examples: Sequence[ClassificationExample], names: Sequence[str]) -> list[ClassificationExample]:
    """Examples whose label ids ("0,15") are replaced by names ("admiration,gratitude"), with
    `names[i]` naming id i; names already given pass through. ValueError naming file:line for an
    id out of range or an unknown name."""
    known = set(names)
    out = []
    for e in examples:
        if e.label is None:
            out.append(e)
            continue
        named = []
        for item in split_labels(e):
            if item in known:
                named.append(item)
            elif re.fullmatch(r"\d+", item) and int(item) < len(names):
                named.append(names[int(item)])
            else:
                raise ValueError(f"{e.source}: label {item!r} is neither an id below {len(names)} nor one of the "
                                 "label names")
        out.append(ClassificationExample(e.text, e.text_pair, LABEL_SEPARATOR.join(named), e.source))
    return out


def infer_multilabel_list(examples: Sequence[ClassificationExample]) -> list[str]:
    """The distinct labels of all cells, sorted (numerically when all are integers)."""
    labels = {item for e in examples if e.label is not None for item in split_labels(e)}
    if labels and all(re.fullmatch(r"-?\d+", label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def encode_multilabels(examples: Sequence[ClassificationExample], label_list: Sequence[str]) -> np.ndarray:
    """Multi-hot targets float32 [N, len(label_list)]; ValueError naming file:line of the first
    label not in `label_list`."""
    index = {label: i for i, label in enumerate(label_list)}
    targets = np.zeros((len(examples), len(label_list)), dtype=np.float32)
    for row, e in enumerate(examples):
        for item in split_labels(e):
            if item not in index:
                raise ValueError(f"{e.source}: unknown label {item!r}; the model's labels are {list(label_list)}")
            targets[row, index[item]] = 1.0
    return targets
