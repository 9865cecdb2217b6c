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

from hotfolder.targets.base import Progress, Session, TransferError, durable_write, fsync_dir

CHUNK = 8 * 1024 * 1024
PARTIAL_SUFFIX = ".partial"
#: Errors that a later try can get past: a full or flaky disk, a share that dropped.
RETRYABLE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.EAGAIN,
        errno.EBUSY,
        errno.ENOTCONN,
        errno.EHOSTDOWN,
        errno.ENODEV,
    }
)


class LocalTarget:
    def __init__(self, name: str, root: Path, receipts: Path | None = None) -> None:
        self.name = name
        self.root = root
        self.receipts = receipts  # in the state dir: proof of delivery that survives a crash

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        self._mark_attempt(session)
        done = 0
        for src, rel in session.files:
            dest = self.root / rel
            try:
                done = self._copy(src, dest, done, progress, cancel)
            except OSError as err:
                raise _error(err, src, dest) from err
        self._write_receipt(session)

    def delivered(self, session: Session) -> bool | None:
        """Our receipt, or the same bytes at the destination, prove delivery. Their absence
        proves nothing: the folder's consumer may already have taken the file."""
        receipt = self._receipt(session)
        if receipt is not None and receipt.is_file():
            return True
        if receipt is not None and not self._attempt(session).exists():
            return False  # no byte ever left for this session
        for src, rel in session.files:
            dest = self.root / rel
            if not dest.is_file():
                return None
            if _digest(src) != _digest(dest):
                return None
        return True

    def _receipt(self, session: Session) -> Path | None:
        if self.receipts is None:
            return None
        return self.receipts / f"{session.submission_id}.{session.label}.done"

    def _attempt(self, session: Session) -> Path:
        assert self.receipts is not None
        return self.receipts / f"{session.submission_id}.{session.label}.attempt"

    def _mark_attempt(self, session: Session) -> None:
        if self.receipts is not None:
            durable_write(self._attempt(session), "")

    def _write_receipt(self, session: Session) -> None:
        receipt = self._receipt(session)
        if receipt is not None:
            durable_write(receipt, "".join(f"{rel}\n" for _, rel in session.files))

    def _copy(
        self, src: Path, dest: Path, done: int, progress: Progress, cancel: threading.Event
    ) -> int:
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
        fsync_dir(dest.parent)
        return done


def _raise_if_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise TransferError("cancelled", "cancelled", retryable=True)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _error(err: OSError, src: Path, dest: Path) -> TransferError:
    code = errno.errorcode.get(err.errno or 0, "EUNKNOWN")
    where = src if err.filename == str(src) else dest
    return TransferError(
        f"{err.strerror or err} ({where})", code, retryable=err.errno in RETRYABLE_ERRNOS
    )
