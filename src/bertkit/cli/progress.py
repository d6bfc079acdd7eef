"""A progress bar for commands that stream a file of lines (predict, embed): on stderr, only when
stderr is a terminal (a log file or a pipe gets no bar), in bytes of the input so that its total is
known without reading the file twice."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator


def with_progress(lines: Iterable[tuple[str, str]], path: str | None, desc: str,
                  show: bool = True) -> Iterator[tuple[str, str]]:
    """Yields the `(where, text)` pairs of `lines` unchanged, advancing a bar by each line's UTF-8
    bytes (+1 for its newline); the total is the size of `path` (unknown for stdin). No bar
    unless `show` and stderr is a terminal."""
    if not (show and sys.stderr.isatty()):
        yield from lines
        return
    from tqdm.auto import tqdm

    total = os.path.getsize(path) if path else None
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False, file=sys.stderr) as bar:
        for item in lines:
            bar.update(len(item[1].encode("utf-8", "surrogatepass")) + 1)
            yield item
