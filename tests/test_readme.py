"""Every code block in the README runs: Python blocks are executed in order in one namespace;
every `bertkit ...` command line in the shell blocks must parse with the real CLI parser."""

import re
import shlex
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_python_blocks_run():
    namespace: dict = {}
    for code in blocks("python"):
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102


def command_lines() -> list[str]:
    lines = []
    for block in blocks("bash"):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = re.sub(r"#.*$", "", line).strip()
            if "bertkit " in line:
                lines.append(line[line.index("bertkit "):])
    return lines


@pytest.mark.parametrize("line", command_lines())
def test_cli_lines_parse(line):
    from bertkit.cli import build_parser

    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args.func is not None
