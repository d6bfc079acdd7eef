"""File writes that a kill cannot leave half done.

Training is resumable after kill -9, so every file it rewrites while it runs (history.json, the
best model at each epoch's end) is written to a side file and renamed over the old one: a kill
leaves either the old complete file or the new one, never a truncated file.
"""

from __future__ import annotations

import os
from typing import Callable

BLOCK_BYTES = 1 << 24  # 16 MiB: what hashing and copying read at a time


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Calls write(tmp_path), then renames tmp_path over path (atomic on POSIX and Windows)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def hash_file(digest, path: str) -> None:
    """Feeds the bytes of `path` to a hashlib object, BLOCK_BYTES at a time (bounded memory)."""
    with open(path, "rb") as f:
        while block := f.read(BLOCK_BYTES):
            digest.update(block)
