"""Command-line flags made from the options dataclasses, and deprecated flag names.

Each option's default is declared once, in its dataclass (FinetuneOptions, PretrainOptions); the
flag, its type and its default here come from the field, so the CLI and the Python API cannot
drift apart (HF's `HfArgumentParser` is the same idea). One concept has one flag name across the
commands; an older name keeps working for one release and warns (`deprecated_alias`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

_TYPES = {"int": int, "float": float, "str": str}


def add_dataclass_flags(parser, cls, helps: dict[str, str], *, flags: dict[str, str] | None = None,
                        choices: dict[str, tuple] | None = None) -> None:
    """One flag per field of dataclass `cls` named in `helps` (in the dataclass's order).

    The flag is `--field-name` unless `flags` renames it; bool fields become `--x` (default False)
    or `--x/--no-x` (default True or None); `X | None` fields take an X and default to None. The
    default, shown in the help, is the field's."""
    flags, choices = flags or {}, choices or {}
    for field in dataclasses.fields(cls):
        if field.name not in helps:
            continue
        flag = flags.get(field.name, "--" + field.name.replace("_", "-"))
        kind = str(field.type).replace(" ", "").removesuffix("|None")
        default = field.default
        help_text = helps[field.name] + ("" if default in (None, False) else f" (default {default})")
        if kind == "bool":
            action = "store_true" if default is False else argparse.BooleanOptionalAction
            parser.add_argument(flag, dest=field.name, action=action, default=default, help=help_text)
        elif kind in _TYPES:
            parser.add_argument(flag, dest=field.name, type=_TYPES[kind], default=default,
                                choices=choices.get(field.name), help=help_text)
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: no flag for type {field.type}")


def add_task_flags(parser, tasks: dict) -> None:
    """One flag per task option that some task in `tasks` ({name: Task subclass}) declares in its
    `flags` (bertkit.tasks.task.TaskFlag). The help names the tasks that read the flag, with each
    group's meaning and its default from the tasks' `defaults`; a new task's flags appear here
    without any change to the CLI."""
    declared: dict[str, list] = {}  # option -> [(task name, TaskFlag)], in registration order
    for name, task in tasks.items():
        for flag in task.flags:
            declared.setdefault(flag.option, []).append((name, flag))
    group = parser.add_argument_group("data columns and task options (each says which tasks read it)")
    for option, users in declared.items():
        first = users[0][1]
        by_help: dict[str, list[str]] = {}
        for name, flag in users:
            by_help.setdefault(flag.help, []).append(name)
        help_text = "; ".join(f"{'/'.join(names)}: {text}{_defaults_text(option, names, tasks, text)}"
                              for text, names in by_help.items())
        kwargs = {"dest": option, "default": None, "help": help_text}
        if first.kind == "switch":
            kwargs["action"] = "store_true"
        elif first.kind == "toggle":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=first.type, choices=first.choices, metavar=first.metavar)
            if first.kind == "repeat":
                kwargs["action"] = "append"
        group.add_argument(first.flag, **kwargs)


def _defaults_text(option: str, names: list[str], tasks: dict, help_text: str) -> str:
    """' (default 128; qa 384)': the tasks' declared defaults, unless the help already says it."""
    if "default" in help_text:
        return ""
    values = {name: tasks[name].defaults.get(option) for name in names}
    values = {name: v for name, v in values.items() if v not in (None, False)}
    if not values:
        return ""
    common = max(set(values.values()), key=list(values.values()).count)
    others = [f"{name} {v}" for name, v in values.items() if v != common]
    return f" (default {common}{'; ' + ', '.join(others) if others else ''})"


def task_options(args: argparse.Namespace, tasks: dict) -> dict:
    """The task options given on the command line: {option: value} of the flags of `tasks` that
    were set."""
    options = {flag.option for task in tasks.values() for flag in task.flags}
    return {k: getattr(args, k) for k in options if getattr(args, k, None) is not None}


def options_from_args(cls, args: argparse.Namespace, **given):
    """An instance of dataclass `cls` from the parsed flags named after its fields, plus `given`."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **given})


class _Deprecated(argparse.Action):
    """Stores like the new flag, after a warning on stderr naming the new flag."""

    def __init__(self, option_strings, dest, new: str, const=None, nargs=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, nargs=0 if const is not None else nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"bertkit: warning: {option_string} is deprecated and will be removed; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.const is not None else values)


def deprecated_alias(parser, old: str, new: str, dest: str, type=None, const=None) -> None:
    """`old` still sets `dest` (as `new` does), warns, and is left out of --help. `const`: the value a
    flag without an argument stores (e.g. --quiet -> progress False)."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, type=type, const=const,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_progress_flag(parser) -> None:
    """--no-progress, for every command that can show a progress bar."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=True,
                        help="no progress bar (default: one on stderr when it is a terminal)")


def show_progress(args: argparse.Namespace) -> bool:
    return getattr(args, "progress", True) and sys.stderr.isatty()


def add_model_flag(parser, help: str, dest: str = "model", required: bool = True) -> None:
    """--model (a local directory or a Hugging Face Hub name) and --revision; `main` resolves the name
    to a local directory (bertkit.hub) before the command runs."""
    parser.add_argument("--model", dest=dest, required=required,
                        help=help + "; a local directory, or a Hugging Face Hub name (owner/name), "
                                    "downloaded once into the Hugging Face cache (safetensors only)")
    parser.add_argument("--revision", help="branch, tag or commit of a Hub model (default: main)")
    parser.set_defaults(model_dest=dest)


def flag_args(options, names, flags: dict[str, str] | None = None) -> list[str]:
    """The command-line flags that give dataclass `options` its values (those of `names` that differ
    from the field's default), as `add_dataclass_flags` made them: the inverse of options_from_args,
    so a command printed for a run is the run (the quickstart's commands.sh)."""
    flags = flags or {}
    argv: list[str] = []
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if field.name not in names or value == field.default:
            continue
        flag = flags.get(field.name, "--" + field.name.replace("_", "-"))
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, str(value)]
    return argv
