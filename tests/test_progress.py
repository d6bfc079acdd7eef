"""The streaming commands' progress bar: on a terminal it counts the input's bytes against the
file's size; otherwise nothing is printed. The lines pass through unchanged either way."""

import io
import sys

from bertkit.cli.progress import with_progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_counts_bytes_on_a_terminal_only(tmp_path, monkeypatch):
    lines = [("f:1", "héllo"), ("f:2", ""), ("f:3", "a\u2028b")]
    path = tmp_path / "in.txt"
    path.write_text("".join(text + "\n" for _, text in lines), encoding="utf-8")
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert list(with_progress(iter(lines), str(path), "embed")) == lines
    assert quiet.getvalue() == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(with_progress(iter(lines), str(path), "embed")) == lines
    size = path.stat().st_size  # the bar's total is the file's size in bytes, and it is cleared at the end
    shown = terminal.getvalue()
    assert shown.startswith("\rembed:") and f"/{size}.0 [" in shown and shown.endswith(" \r")
