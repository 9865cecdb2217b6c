"""Deliver one submission: media in one session, then (only once that succeeded) the manifest
alone, then archive or delete. Runs on a worker thread; every state change goes to the journal
first, so a crash anywhere resumes from the last committed state (see `recovery.resume`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from hotfolder import postprocess
from hotfolder.clock import Clock
from hotfolder.config import WatchConfig
from hotfolder.journal import Journal, Row
from hotfolder.model import Problem, State, Submission
from hotfolder.targets import Session, Target, TransferError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff (aspera-cli's defaults: 7 tries, 2 s, x2, at most 60 s). Its fields
    are the config's `retry:` keys, so a target's settings build it as they are."""

    tries: int = 7
    initial_delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 60.0

    def delays(self) -> Iterator[float]:
        """The pause before each retry (so tries - 1 values)."""
        delay = self.initial_delay
        for _ in range(self.tries - 1):
            yield min(delay, self.max_delay)
            delay *= self.factor


class ProgressLog:
    """Byte progress into the journal (at most once a second, for `hotfolder status`) and the
    log (at most every 10 % or 30 s, so journald is not flooded by STATS at 10/s)."""

    JOURNAL_EVERY = 1.0
    LOG_EVERY = 30.0
    LOG_STEP = 0.10

    def __init__(
        self,
        journal: Journal,
        sid: str,
        total: int,
        offset: int,
        clock: Clock,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.journal, self.sid, self.total, self.offset = journal, sid, max(total, 1), offset
        self.clock, self.log = clock, log
        self.started = self.last_write = self.last_log = clock.monotonic()
        self.last_fraction = 0.0

    def __call__(self, session_bytes: int) -> None:
        now = self.clock.monotonic()
        done = self.offset + session_bytes
        if now - self.last_write >= self.JOURNAL_EVERY:
            self.last_write = now
            self.journal.progress(self.sid, done)
        fraction = done / self.total
        if fraction - self.last_fraction >= self.LOG_STEP or now - self.last_log >= self.LOG_EVERY:
            elapsed = max(now - self.started, 1e-6)
            rate = session_bytes / elapsed
            eta = (self.total - done) / rate if rate > 0 else None
            self.log.info(
                "progress",
                percent=round(100 * fraction),
                bytes_done=done,
                bytes_total=self.total,
                rate_bytes_s=round(rate),
                eta_s=round(eta) if eta is not None else None,
            )
            self.last_fraction, self.last_log = fraction, now


class Cancelled(Exception):
    """Shutdown asked the transfer to stop; the journal state stays for the next start."""


def media_session(sub: Submission, root: Path) -> Session:
    return Session(sub.id, "media", tuple((root / f.relpath, f.dest) for f in sub.media))


def manifest_session(sub: Submission, root: Path) -> Session:
    return Session(sub.id, "manifest", ((root / sub.manifest.relpath, sub.manifest.dest),))


class Delivery:
    def __init__(
        self,
        watch: WatchConfig,
        target: Target,
        journal: Journal,
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

    def run(self, row: Row) -> State:
        """Take the submission from its journal state to complete (or failed); return the end
        state. Raises Cancelled on shutdown, leaving the state for the next start."""
        sub = row.submission()
        log = structlog.get_logger()
        # Bound for the whole delivery, so the target's own lines carry them too.
        with structlog.contextvars.bound_contextvars(
            submission_id=sub.id, watch=sub.watch, state=str(row.state)
        ):
            return self._run(sub, row.state, log)

    def _run(
        self, sub: Submission, state: State, log: structlog.typing.FilteringBoundLogger
    ) -> State:
        try:
            if state is State.QUEUED and sub.media:
                self._media(sub, log)
                state = State.MEDIA_SENT
            if state in (State.QUEUED, State.MEDIA_SENT):
                self._manifest(sub, log)
                state = State.COMPLETE
        except TransferError as err:
            self._fail(sub, err, log)
            return State.FAILED
        if state is State.COMPLETE:
            self.finish(sub, log)
        return state

    def _media(self, sub: Submission, log: structlog.typing.FilteringBoundLogger) -> None:
        self._check_unchanged(sub)
        self._step(sub.id, State.SENDING_MEDIA, log, f"{len(sub.media)} files")
        self._send(media_session(sub, self.watch.path), log, sub)
        self._step(sub.id, State.MEDIA_SENT, log, "media delivered")

    def _manifest(self, sub: Submission, log: structlog.typing.FilteringBoundLogger) -> None:
        self._check_unchanged(sub, manifest_only=True)
        self._step(sub.id, State.SENDING_MANIFEST, log, str(sub.manifest.dest))
        self._send(manifest_session(sub, self.watch.path), log, sub)
        self.journal.progress(sub.id, sub.total_bytes)
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
                delay = next(delays, None) if err.retryable else None
                self.journal.record_attempt(
                    session.submission_id, self.clock.now(), attempt, err.code, err.message
                )
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

    def _check_unchanged(self, sub: Submission, manifest_only: bool = False) -> None:
        files = (sub.manifest,) if manifest_only else sub.files
        for f in files:
            try:
                st = (self.watch.path / f.relpath).stat()
            except FileNotFoundError as err:
                raise TransferError(
                    f"'{f.relpath}' disappeared before it was sent",
                    "source-missing",
                    retryable=False,
                ) from err
            if not f.identity.unchanged_in(st):
                raise TransferError(
                    f"'{f.relpath}' changed after it settled", "source-changed", retryable=False
                )

    def _fail(
        self, sub: Submission, err: TransferError, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        now = self.clock.now()
        self.journal.transition(
            sub.id,
            State.FAILED,
            now,
            note=err.message,
            error_code=err.code,
            error_message=err.message,
        )
        problem = Problem(
            err.code, f"the transfer to '{self.target.name}' failed: {err.message}", _hint(err)
        )
        folder = postprocess.quarantine(
            sub.id,
            sub.watch,
            self.watch.path,
            sub.manifest.relpath,
            [f.relpath for f in sub.media],
            [problem],
            self.watch.failed_dir,
            now,
        )
        log.error(
            "submission failed",
            state=str(State.FAILED),
            code=err.code,
            error=err.message,
            report=str(folder / postprocess.REPORT_TXT),
        )

    def finish(self, sub: Submission, log: structlog.typing.FilteringBoundLogger) -> None:
        """Archive/delete after `complete` is committed; safe to repeat after a crash."""
        now = self.clock.now()
        outcome = postprocess.after_success(
            sub, self.watch.path, self.watch.after_success, self.watch.archive_dir, now
        )
        note = f"{self.watch.after_success}: {len(outcome.moved) + len(outcome.deleted)} files"
        if outcome.kept and self.watch.after_success != "keep":
            note += f"; left in place (changed since sent): {', '.join(outcome.kept)}"
        self.journal.mark_postprocessed(sub.id, now, note)
        log.info(
            "submission complete",
            state=str(State.COMPLETE),
            files=len(sub.files),
            bytes=sub.total_bytes,
            after_success=self.watch.after_success,
            archived_to=str(outcome.destination) if outcome.destination else None,
            kept=list(outcome.kept) or None,
        )


def _hint(err: TransferError) -> str:
    if err.code == "source-changed":
        return "a file was modified while it was queued; drop the submission again"
    if err.code == "source-missing":
        return "a file was removed from the drop folder; drop the submission again"
    if err.retryable:
        return (
            "the destination kept failing; check it is reachable and has space, then "
            "drop the submission again"
        )
    return "check the destination's permissions and path, then drop the submission again"
