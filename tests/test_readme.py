"""Every code block in the README runs: the Python blocks are executed in order, in one fresh
process, as a user would run them (the Hub name they use is served by a stand-in Hub on 127.0.0.1
holding the real MiniLM; `train.tsv`/`dev.tsv` are real SST-2 rows); every `bertkit ...` command
line in the shell blocks of the README and of docs/*.md must parse with the real CLI parser."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_server import HubServer, Repo

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str, text: str = README) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_python_blocks_run(tmp_path, minilm_path, shared_data):
    sst2 = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.tsv").write_text("\n".join(sst2[:97]) + "\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("\n".join(sst2[:1] + sst2[1000:1064]) + "\n", encoding="utf-8")
    (tmp_path / "readme.py").write_text("\n\n".join(blocks("python")), encoding="utf-8")
    names = set(re.findall(r'"([\w-]+/[\w.-]+)"', "\n".join(blocks("python"))))
    assert names == {"sentence-transformers/all-MiniLM-L6-v2"}, names
    hub = HubServer({name: Repo.from_dir(minilm_path) for name in names}).start()
    env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TMPDIR=str(tmp_path))  # the README's mkdtemp lands here
    try:
        out = subprocess.run([sys.executable, "readme.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=900)
    finally:
        hub.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    printed = out.stdout.splitlines()
    assert printed[0] == "(2, 10, 384) (2, 384)"
    assert printed[1] == "['[CLS]', 'bert', ',', 'from'] [(0, 0), (0, 4), (4, 5), (6, 10)]"
    assert printed[2].startswith("(3, 384) [")
    assert "(1, 2)" in printed
    assert "accuracy" in printed[-1]


def command_lines(text: str = README) -> list[list[str]]:
    """The `bertkit ...` commands of the text's bash blocks, as argument lists: continuation lines
    joined, comments dropped (quotes respected), the command cut at a pipe or redirection."""
    commands = []
    for block in blocks("bash", text):
        for line in block.replace("\\\n", " ").splitlines():
            if "bertkit " not in line:
                continue
            words = shlex.split(line, comments=True)
            if "bertkit" not in words[:-1]:
                continue
            words = words[words.index("bertkit"):]
            end = next((i for i, w in enumerate(words) if w in {"|", ">", "2>", "&&", ";"} or w.startswith(">")),
                       len(words))
            commands.append(words[:end])
    return commands


DOC_COMMANDS = [(path.name, words) for path in sorted((ROOT / "docs").glob("*.md"))
                for words in command_lines(path.read_text())]
COMMANDS = [("README.md", words) for words in command_lines()] + DOC_COMMANDS


@pytest.mark.parametrize("doc,words", COMMANDS, ids=[f"{d}:{' '.join(w[:3])}" for d, w in COMMANDS])
def test_cli_lines_parse(doc, words):
    from bertkit.cli import build_parser

    args = build_parser().parse_args(words[1:])
    assert args.func is not None


def test_docs_have_commands():
    assert len(DOC_COMMANDS) >= 30, DOC_COMMANDS  # the docs' command blocks were found
