"""The `local` target: a destination folder (a NAS export, a transcoder's watch folder).

Each file is written as `<name>.partial`, flushed to disk and renamed, so a reader of the
destination never sees half a file; the rename is atomic within one filesystem.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

from hotfolder.targets.base import Progress, Session, TransferError

CHUNK = 8 * 1024 * 1024
PARTIAL_SUFFIX = ".partial"
#: Errors that a later try can get past: a full or flaky disk, a share that dropped.
RETRYABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ETIMEDOUT,
                              errno.ESTALE, errno.EAGAIN, errno.EBUSY, errno.ENOTCONN,
                              errno.EHOSTDOWN, errno.ENODEV})


class LocalTarget:
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        done = 0
        for src, rel in session.files:
            dest = self.root / rel
            try:
                done = self._copy(src, dest, done, progress, cancel)
            except OSError as err:
                raise _error(err, src, dest) from err

    def delivered(self, session: Session) -> bool | None:
        """Same bytes at the destination prove delivery; their absence proves nothing, since
        the consumer of the folder may already have taken the file."""
        for src, rel in session.files:
            dest = self.root / rel
            if not dest.is_file():
                return None
            if _digest(src) != _digest(dest):
                return None
        return True

    def _copy(self, src: Path, dest: Path, done: int, progress: Progress,
              cancel: threading.Event) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
        try:
            with open(src, "rb") as fin, open(partial, "wb") as fout:
                while True:
                    _raise_if_cancelled(cancel)
                    sent = os.sendfile(fout.fileno(), fin.fileno(), None, CHUNK)
                    if sent == 0:
                        break
                    done += sent
                    progress(done)
                os.fsync(fout.fileno())
            os.replace(partial, dest)
        except BaseException:
            partial.unlink(missing_ok=True)  # never leave half a file for the next reader
            raise
        _fsync_dir(dest.parent)
        return done


def _raise_if_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise TransferError("cancelled", "cancelled", retryable=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _error(err: OSError, src: Path, dest: Path) -> TransferError:
    code = errno.errorcode.get(err.errno or 0, "EUNKNOWN")
    where = src if err.filename == str(src) else dest
    return TransferError(f"{err.strerror or err} ({where})", code,
                         retryable=err.errno in RETRYABLE_ERRNOS)
