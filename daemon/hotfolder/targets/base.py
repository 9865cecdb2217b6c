"""The interface every transfer backend implements."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

#: Called with the session's bytes done so far.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Session:
    """One transfer session: the media batch, or the manifest alone."""

    submission_id: str
    label: str  # "media" or "manifest": the manifest never shares a session with its media
    files: tuple[tuple[Path, PurePosixPath], ...]  # (source, destination relative to the root)


class TransferError(Exception):
    """A session failed. `retryable` says whether trying again can help."""

    def __init__(self, message: str, code: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


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


class Target(Protocol):
    name: str

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        """Deliver every file of the session or raise TransferError."""

    def delivered(self, session: Session) -> bool | None:
        """After a crash: True if the session's files provably arrived, False if provably
        not (nothing was ever sent for it), None if it cannot be told."""
