"""The `local` target: a destination folder (a NAS export, a transcoder's watch folder).

Each file is written as `<name>.partial`, flushed to disk and renamed, so a reader of the
destination never sees half a file; the rename is atomic within one filesystem. Because the
rename is what makes a file arrive, a failure before it proves the file did not arrive.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

from hotfolder.durable import durable_write, fsync_dir
from hotfolder.transfer.targets.base import (
    Fault,
    Progress,
    Session,
    SharedEvidence,
    TransferError,
)

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
#: The destination refuses us: a read-only mount, permissions. Only an admin can fix these;
#: the editor's drop is fine and waits (held) until they are fixed.
ADMIN_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT})


#: Only the manifest's session needs evidence of what happened (recovery and a failed manifest
#: session ask for it); a media session is simply sent again, so it costs no fsync'd files.
EVIDENCE_FOR = "manifest"


class LocalTarget:
    def __init__(
        self,
        name: str,
        root: Path,
        receipts: Path | None = None,
        shared: SharedEvidence | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self.receipts = receipts  # in the state dir: proof of delivery that survives a crash
        self.shared = shared  # a fleet's evidence: decides a session whichever node asks

    def check(self) -> TransferError | None:
        """The destination folder exists, is a folder, and is writable (not read-only)."""
        try:
            if not self.root.is_dir():
                return TransferError(
                    f"the destination folder {self.root} is missing (is it mounted?)",
                    "target-missing",
                    Fault.ADMIN,
                    may_have_arrived=False,
                )
            if os.statvfs(self.root).f_flag & os.ST_RDONLY:
                return TransferError(
                    f"the destination folder {self.root} is on a read-only file system",
                    "EROFS",
                    Fault.ADMIN,
                    may_have_arrived=False,
                )
        except OSError as err:
            return _error(err, None, self.root)
        if not os.access(self.root, os.W_OK | os.X_OK):
            return TransferError(
                f"this daemon's user may not write to the destination folder {self.root}",
                "EACCES",
                Fault.ADMIN,
                may_have_arrived=False,
            )
        return None

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        problem = self.check()
        if problem is not None:
            raise problem
        done = 0
        arrived = False  # has a file of this session been renamed into place yet?
        try:
            for src, rel in session.files:
                dest = self.root / rel
                try:
                    done = self._copy(session, src, dest, done, progress, cancel)
                except OSError as err:
                    raise _error(err, src, dest) from err
                arrived = True
        except TransferError as err:
            err.may_have_arrived = err.may_have_arrived or arrived
            if not err.may_have_arrived:
                self._unmark_attempt(session)  # proven: nothing of it arrived
            raise
        self._write_receipt(session)

    def delivered(self, session: Session) -> bool | None:
        """Our receipt, or the same bytes at the destination, prove delivery. Their absence
        proves nothing: the folder's consumer may already have taken the file."""
        shared = self.shared if session.label == EVIDENCE_FOR else None
        if shared is not None:  # a fleet: the node asking may not be the one that sent it
            sid = session.submission_id
            if shared.receipt(sid, session.label) is not None:
                return True
            if not shared.attempted(sid, session.label):
                return False
        else:
            receipt = self._receipt(session)
            if receipt is not None and receipt.is_file():
                return True
            attempt = self._attempt(session)
            if receipt is not None and attempt is not None and not attempt.exists():
                return False  # no byte ever left for this session
        for src, rel in session.files:
            dest = self.root / rel
            if not dest.is_file():
                return None
            if _digest(src) != _digest(dest):
                return None
        return True

    def _receipt(self, session: Session) -> Path | None:
        if self.receipts is None or session.label != EVIDENCE_FOR:
            return None
        return self.receipts / f"{session.submission_id}.{session.label}.done"

    def _attempt(self, session: Session) -> Path | None:
        if self.receipts is None or session.label != EVIDENCE_FOR:
            return None
        return self.receipts / f"{session.submission_id}.{session.label}.attempt"

    def _mark_attempt(self, session: Session) -> None:
        """Durable before the first byte of the session is written to the destination: the
        last moment at which nothing of it had provably left (issue 16, item 17)."""
        attempt = self._attempt(session)
        if attempt is not None and not attempt.exists():
            durable_write(attempt, "")
        if attempt is not None and self.shared is not None:
            # Fenced: a node that lost its claim (or its lease) stops before the first byte.
            self.shared.mark_attempt(session.submission_id, session.label)

    def _unmark_attempt(self, session: Session) -> None:
        attempt = self._attempt(session)
        if attempt is not None and attempt.exists():
            attempt.unlink()
            fsync_dir(attempt.parent)
            if self.shared is not None:
                self.shared.unmark_attempt(session.submission_id, session.label)

    def _write_receipt(self, session: Session) -> None:
        receipt = self._receipt(session)
        if receipt is not None:
            body = "".join(f"{rel}\n" for _, rel in session.files)
            durable_write(receipt, body)
            if self.shared is not None:
                self.shared.put_receipt(session.submission_id, session.label, body)

    def _copy(
        self,
        session: Session,
        src: Path,
        dest: Path,
        done: int,
        progress: Progress,
        cancel: threading.Event,
    ) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)  # the root itself: check() saw it
        partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
        with open(src, "rb") as fin:
            self._mark_attempt(session)
            try:
                with open(partial, "wb") as fout:
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
        try:
            fsync_dir(dest.parent)
        except OSError as err:
            raise _error(err, src, dest, may_have_arrived=True) from err
        return done


def _raise_if_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise TransferError("cancelled", "cancelled", may_have_arrived=False)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _error(
    err: OSError, src: Path | None, dest: Path, *, may_have_arrived: bool = False
) -> TransferError:
    """Who can fix it: a transient errno is retried; the destination refusing us (read-only,
    permissions, gone) is the admin's; anything about the editor's own file is the editor's."""
    code = errno.errorcode.get(err.errno or 0, "EUNKNOWN")
    at_source = src is not None and err.filename == str(src)
    where = src if at_source else dest
    if err.errno in RETRYABLE_ERRNOS:
        fault = Fault.TRANSIENT
    elif err.errno in ADMIN_ERRNOS and not at_source:
        fault = Fault.ADMIN
    else:
        fault = Fault.EDITOR
    return TransferError(
        f"{err.strerror or err} ({where})", code, fault, may_have_arrived=may_have_arrived
    )
