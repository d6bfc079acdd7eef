"""Every flag an error or warning message suggests exists on each command that can print it.

Messages are found in the source (string constants inside `raise` statements and logging calls);
MODULE_COMMANDS says which commands run each module that suggests a flag. A module that starts
suggesting flags must be added there, so a new message is checked too."""

import argparse
import ast
import re
from pathlib import Path

import pytest

from bertkit.cli import build_parser

SRC = Path(__file__).resolve().parents[1] / "src" / "bertkit"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
MODULE_COMMANDS = {
    "data/pretraining.py": ["pretrain", "pretrain-data"],
    "data/corpus.py": ["pretrain", "pretrain-data", "vocab"],
    "tasks/pretrain.py": ["pretrain"],
    "tokenizer/vocab.py": ["vocab"],
    "tasks/base.py": ["finetune"],
    "tasks/inference.py": ["predict", "evaluate"],
    "embeddings.py": ["embed"],
    "tasks/ner.py": ["finetune", "evaluate"],
    "tasks/embedding.py": ["finetune", "evaluate"],
    "config.py": ["finetune", "evaluate", "export"],
    "data/classification.py": ["finetune", "evaluate"],
    "tasks/classify.py": ["finetune", "evaluate"],
    "quickstart/pipeline.py": ["quickstart"],
    "hub.py": ["finetune", "evaluate", "predict", "embed", "search", "export", "serve", "pretrain"],
    "tasks/lite.py": ["predict", "evaluate", "embed", "search", "serve", "export"],
    "export/runtime.py": ["serve"],
}
LOG_CALLS = {"warning", "error", "info", "exception", "critical"}


NAMED_COMMAND = re.compile(r"`bertkit ([a-z][a-z-]*)([^`]*)`")  # a quoted command line with its flags


def suggested_flags(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """(flags for the module's own commands, (command, flag) for messages that name their command)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    messages = []
    for node in ast.walk(tree):
        is_log = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in LOG_CALLS)
        if isinstance(node, ast.Raise) or is_log:
            messages += [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    own, named = set(), set()
    for message in messages:
        for command, rest in NAMED_COMMAND.findall(message):
            named |= {(command, flag) for flag in FLAG.findall(rest)}
        own |= set(FLAG.findall(NAMED_COMMAND.sub("", message)))
    return own, named


def command_flags() -> dict[str, set[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {s for action in p._actions for s in action.option_strings} for name, p in sub.choices.items()}


def test_every_suggested_flag_exists_on_its_commands():
    commands = command_flags()
    found = {}
    for path in SRC.rglob("*.py"):
        if "cli" in path.parts:
            continue  # the CLI's own messages are next to its own parser
        flags, named = suggested_flags(path)
        if flags:
            found[path.relative_to(SRC).as_posix()] = flags
        for command, flag in named:
            assert flag in commands.get(command, set()), (path.name, f"bertkit {command} {flag}")
    unmapped = sorted(set(found) - set(MODULE_COMMANDS))
    assert not unmapped, f"add these modules to MODULE_COMMANDS: {unmapped}"
    for module, flags in found.items():
        for command in MODULE_COMMANDS[module]:
            assert flags <= commands[command], (module, command, flags - commands[command])


@pytest.mark.parametrize("command", ["pretrain", "pretrain-data"])
def test_corpus_format_flag_on_both_corpus_commands(command):
    assert "--format" in command_flags()[command]
