"""Writes that a crash cannot undo: the journal's companions (attempt markers, receipts, kept
markers) and the local target's files rely on them. Leaf module: it imports nothing of ours."""

from __future__ import annotations

import os
from pathlib import Path


def durable_write(path: Path, text: str) -> None:
    """Write, fsync, rename, fsync the folder: after this returns, a crash cannot undo it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
