"""Deliver one submission: media in one session, then (only once that succeeded and every
file is still the one that settled) the manifest alone. Runs on a worker thread; every
state change goes to the journal first, so a crash anywhere resumes from the last committed
state (see `recovery.resume`).

Every delivery ends decided and says how (`Ended`): complete (the caller archives or deletes),
failed (the editor's to fix: the caller records it and writes the report, see
service.outcomes), held (an admin's fault, an unprovable manifest, or an unexpected error,
recorded here with the reason), or left in its state for the next start only when shutdown
cancelled it. It moves no file: what happens to the files is the `after` stage's job.
"""

from __future__ import annotations

import stat
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import structlog

from hotfolder.clock import Clock
from hotfolder.config.sections import RetrySettings
from hotfolder.config.settings import WatchConfig
from hotfolder.model import Problem, State, Submission
from hotfolder.state.journal import Row, StaleTransition
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.port import JournalPort
from hotfolder.state.recovery import MANIFEST_UNCONFIRMED
from hotfolder.transfer.progress import ProgressLog
from hotfolder.transfer.targets import Fault, Session, Target, TransferError
from hotfolder.transfer.targets.steering import WINDOW_CLOSED

#: error_code of a hold only an admin can fix ("admin:" + the target's code); the daemon
#: re-checks these by itself (faults.AdminHolds).
ADMIN_PREFIX = "admin:"
INTERNAL_ERROR = "internal-error"


#: Exponential backoff (aspera-cli's defaults: 7 tries, 2 s, x2, at most 60 s): the config's
#: `retry:` section, typed, with the schema's defaults.
RetryPolicy = RetrySettings


class Ending(StrEnum):
    """How a delivery ended (the journal's state of the same name)."""

    COMPLETE = "complete"
    FAILED = "failed"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Sent:
    """Complete and committed; the files are the caller's to archive or delete."""

    ending: ClassVar[Ending] = Ending.COMPLETE


@dataclass(frozen=True, slots=True)
class Refused:
    """Failed, the editor's to fix; nothing committed yet: the caller rejects it (journal,
    quarantine with `problem` in the report, alert)."""

    problem: Problem
    ending: ClassVar[Ending] = Ending.FAILED


@dataclass(frozen=True, slots=True)
class Held:
    """Held and committed, with the reason; the files stay in the drop folder."""

    problem: Problem
    ending: ClassVar[Ending] = Ending.HELD


Ended = Sent | Refused | Held


class HoldKind(StrEnum):
    ADMIN = "admin"  # only an admin can fix it; re-checked and resumed by itself
    UNCONFIRMED = "unconfirmed"  # the manifest may have arrived: an operator decides
    INTERNAL = "internal"  # an unexpected error: an operator looks at the log


class _Hold(Exception):
    """Stop here and hold the submission; `resume` is the state to go back to, if any."""

    def __init__(self, kind: HoldKind, code: str, message: str, resume: State | None) -> None:
        super().__init__(message)
        self.kind, self.code, self.message, self.resume = kind, code, message, resume


class Cancelled(Exception):
    """Shutdown asked the transfer to stop; the journal state stays for the next start."""


class Paused(Exception):
    """The media session stopped at the end of its transfer window (`at_window_end: pause`);
    the submission is ready again and goes on (ascp -k) when a window opens."""


def media_session(sub: Submission, root: Path) -> Session:
    return Session(sub.id, "media", tuple((root / f.relpath, f.dest) for f in sub.media))


def manifest_session(sub: Submission, root: Path) -> Session:
    return Session(sub.id, "manifest", ((root / sub.manifest.relpath, sub.manifest.dest),))


class Delivery:
    def __init__(
        self,
        watch: WatchConfig,
        target: Target,
        journal: JournalPort,
        clock: Clock,
        cancel: threading.Event,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.watch = watch
        self.target = target
        self.journal = journal
        self.clock = clock
        self.cancel = cancel
        self.retry = retry or RetryPolicy()

    def run(self, row: Row) -> Ended:
        """Take the submission from its journal state to a decided end and say which: held is
        committed here; complete is committed and left for the caller to archive; failed is
        left for the caller to record (with its files) through its one way to reject. Raises
        Cancelled on shutdown, leaving the state for the next start, and StaleTransition if
        someone else moved the submission."""
        log = structlog.get_logger()
        # Bound for the whole delivery, so the target's own lines carry them too.
        with structlog.contextvars.bound_contextvars(
            submission_id=row.id, watch=row.watch, state=str(row.state)
        ):
            try:
                sub = row.submission()
                return self._run(sub, row.state, log)
            except (Cancelled, Paused, StaleTransition, JournalUnavailable):
                raise  # JournalUnavailable: a fleet's journal is away; a takeover decides
            except Exception as err:
                # A bug, a dead disk: never leave the row in a working state nobody works
                # on. Held, with the reason, for an operator.
                log.exception("delivery stopped on an unexpected error; holding it")
                hold = _Hold(
                    HoldKind.INTERNAL,
                    INTERNAL_ERROR,
                    f"the delivery stopped on an unexpected error ({type(err).__name__}: "
                    f"{err}); the files are where they were; see the daemon's log, then: "
                    f"hotfolder retry {row.id}",
                    None,
                )
                return self._hold(row.id, hold, log)

    def _run(
        self, sub: Submission, state: State, log: structlog.typing.FilteringBoundLogger
    ) -> Ended:
        try:
            if state is State.QUEUED and sub.media:
                self._media(sub, log)
                state = State.MEDIA_SENT
            if state in (State.QUEUED, State.MEDIA_SENT):
                self._manifest(sub, log)
                state = State.COMPLETE
        except TransferError as err:
            problem = Problem(
                err.code, f"the transfer to '{self.target.name}' failed: {err.message}", _hint(err)
            )
            return Refused(problem)
        except _Hold as hold:
            return self._hold(sub.id, hold, log)
        if state is not State.COMPLETE:  # a row already past sending: nothing of ours to do
            raise StaleTransition(f"{sub.id}: nothing to deliver from {state}")
        return Sent()

    def _media(self, sub: Submission, log: structlog.typing.FilteringBoundLogger) -> None:
        check_unchanged(self.watch.path, sub)
        self._step(sub.id, State.SENDING_MEDIA, log, f"{len(sub.media)} files")
        self._send(media_session(sub, self.watch.path), log, sub)
        self._step(sub.id, State.MEDIA_SENT, log, "media delivered")

    def _manifest(self, sub: Submission, log: structlog.typing.FilteringBoundLogger) -> None:
        # Every file again, not only the manifest: a medium changed while it was sent (or
        # since) may have left a mixed copy at the destination, and the manifest would make
        # the ingest server take it (issue 16, item 6).
        check_unchanged(self.watch.path, sub, sent=True)
        self._step(sub.id, State.SENDING_MANIFEST, log, str(sub.manifest.dest))
        self._send(manifest_session(sub, self.watch.path), log, sub)
        ProgressLog(self.journal, sub.id, sub.total_bytes, 0, self.clock, log).write(
            sub.total_bytes
        )
        self._step(sub.id, State.COMPLETE, log, "manifest delivered")

    def _step(
        self, sid: str, state: State, log: structlog.typing.FilteringBoundLogger, note: str
    ) -> None:
        self.journal.transition(sid, state, self.clock.now(), note=note)
        structlog.contextvars.bind_contextvars(state=str(state))
        log.info(f"state: {state}", detail=note)

    def _send(
        self, session: Session, log: structlog.typing.FilteringBoundLogger, sub: Submission
    ) -> None:
        delays = self.retry.delays()
        attempt = 0
        offset = sub.total_bytes - sub.manifest.identity.size if session.label == "manifest" else 0
        while True:
            attempt += 1
            progress = ProgressLog(self.journal, sub.id, sub.total_bytes, offset, self.clock, log)
            try:
                self.target.send(session, progress, self.cancel)
            except TransferError as err:
                if self.cancel.is_set():
                    raise Cancelled(session.submission_id) from err
                if err.code == WINDOW_CLOSED:
                    self._step(sub.id, State.READY, log, err.message)
                    raise Paused(err.message) from err
                self.journal.record_attempt(
                    session.submission_id, self.clock.now(), attempt, err.code, err.message
                )
                if self._manifest_arrived(session, err, log):
                    return
                if err.fault is Fault.ADMIN:
                    raise _admin_hold(session, err) from err
                delay = next(delays, None) if err.fault is Fault.TRANSIENT else None
                if delay is None:
                    raise
                log.warning(
                    "transfer failed, will retry",
                    session=session.label,
                    code=err.code,
                    error=err.message,
                    attempt=attempt,
                    retry_in=delay,
                )
                if self.clock.wait(self.cancel, delay):
                    raise Cancelled(session.submission_id) from err
            else:
                return

    def _manifest_arrived(
        self, session: Session, err: TransferError, log: structlog.typing.FilteringBoundLogger
    ) -> bool:
        """A manifest session failed after the manifest may have left: decided by evidence,
        as after a crash, never by trying again (a second manifest is a second asset).
        True: it provably arrived. Raises _Hold when it cannot be told. False: it provably
        did not, and the failure may be handled like any other."""
        if session.label != "manifest" or not err.may_have_arrived:
            return False
        evidence = self.target.delivered(session)
        if evidence:
            log.warning(
                "the manifest session failed, but the manifest is at the destination: "
                "counted as delivered",
                code=err.code,
                error=err.message,
            )
            return True
        if evidence is None:
            raise _Hold(
                HoldKind.UNCONFIRMED,
                MANIFEST_UNCONFIRMED,
                f"the manifest session failed ({err.message}) after the manifest may have "
                "left; its delivery cannot be proven and sending it again could create a "
                "duplicate asset; check the destination, then: hotfolder retry "
                f"{session.submission_id} (send it again) or hotfolder forget "
                f"{session.submission_id} (it arrived)",
                None,
            )
        return False

    def _hold(self, sid: str, hold: _Hold, log: structlog.typing.FilteringBoundLogger) -> Ended:
        """Held with the reason, files left where they are. The hold and where to resume go
        in the row's detail, for the re-check (faults.AdminHolds) and `hotfolder status`."""
        now = self.clock.now()
        row = self.journal.get(sid)
        detail: dict[str, Any] = dict(row.detail) if row is not None else {}
        before = detail.get("hold") or {}
        holds = int(before.get("holds", 0)) + 1 if before.get("code") == hold.code else 1
        detail["hold"] = {
            "kind": str(hold.kind),
            "code": hold.code,
            "resume": str(hold.resume) if hold.resume else None,
            "holds": holds,
            "since": now.isoformat(),
        }
        self.journal.transition(
            sid,
            State.HELD,
            now,
            note=hold.message,
            error_code=hold.code,
            error_message=hold.message,
            detail=detail,
        )
        structlog.contextvars.bind_contextvars(state=str(State.HELD))
        log.info("holding it", resumes_at=str(hold.resume) if hold.resume else None)
        return Held(Problem(hold.code, hold.message))


def check_unchanged(root: Path, sub: Submission, *, sent: bool = False) -> None:
    """Each file is still the regular file that settled (not replaced, not a link now,
    same size, mtime and inode). With `sent`, after the media session: a medium that
    changed may have reached the destination half old, half new."""
    for f in sub.files:
        try:
            st = (root / f.relpath).lstat()
        except FileNotFoundError as err:
            raise TransferError(
                f"'{f.relpath}' disappeared before it was sent",
                "source-missing",
                Fault.EDITOR,
                may_have_arrived=False,
            ) from err
        if stat.S_ISREG(st.st_mode) and f.identity.unchanged_in(st):
            continue
        if sent and f is not sub.manifest:
            raise TransferError(
                f"'{f.relpath}' changed while it was being sent; the destination may "
                "have an incomplete copy; drop it again",
                "source-changed-in-flight",
                Fault.EDITOR,
                may_have_arrived=False,
            )
        raise TransferError(
            f"'{f.relpath}' changed after it settled",
            "source-changed",
            Fault.EDITOR,
            may_have_arrived=False,
        )


def _admin_hold(session: Session, err: TransferError) -> _Hold:
    """An admin's fault: the drop waits in the drop folder and goes on by itself once the
    fault is gone. The media go again from the start (resume makes it cheap); a manifest
    session that failed before any byte of it could leave goes back to media-sent."""
    resume = State.MEDIA_SENT if session.label == "manifest" else State.READY
    return _Hold(
        HoldKind.ADMIN,
        ADMIN_PREFIX + err.code,
        f"{err.message}. Only an admin can fix this; the editor's files stay in the drop "
        "folder and are sent by themselves once it is fixed (or at once: hotfolder retry "
        f"{session.submission_id})",
        resume,
    )


def _hint(err: TransferError) -> str:
    if err.code == "source-changed":
        return "a file was modified while it was queued; drop the submission again"
    if err.code == "source-changed-in-flight":
        return (
            "a file was modified while it was being sent; let the copy finish, then drop "
            "the submission again"
        )
    if err.code == "source-missing":
        return "a file was removed from the drop folder; drop the submission again"
    if err.retryable:
        return (
            "the destination kept failing; check it is reachable and has space, then "
            "drop the submission again"
        )
    return "check the destination's permissions and path, then drop the submission again"
