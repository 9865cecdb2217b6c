"""Byte progress of a running transfer, for `hotfolder status` and the log."""

from __future__ import annotations

import sqlite3

import structlog

from hotfolder.clock import Clock
from hotfolder.metrics import COUNTERS
from hotfolder.state.journal_file import JournalError
from hotfolder.state.port import JournalPort


class ProgressLog:
    """Byte progress into the journal (at most once a second, for `hotfolder status`) and the
    log (at most every 10 % or 30 s, so journald is not flooded by STATS at 10/s)."""

    JOURNAL_EVERY = 1.0
    LOG_EVERY = 30.0
    LOG_STEP = 0.10
    WARN_EVERY = 60.0  # a failing progress write (a full state disk) is said this often

    def __init__(
        self,
        journal: JournalPort,
        sid: str,
        total: int,
        offset: int,
        clock: Clock,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.journal, self.sid, self.total, self.offset = journal, sid, max(total, 1), offset
        self.clock, self.log = clock, log
        self.started = self.last_write = self.last_log = clock.monotonic()
        self.last_warning = float("-inf")
        self.last_fraction = 0.0
        self.moving = False  # a byte of this session was reported

    def __call__(self, session_bytes: int) -> None:
        if not self.moving and session_bytes > 0:
            self.moving = True
            COUNTERS.first_byte(self.sid)  # the pick-up time (ready -> first byte) ends here
        now = self.clock.monotonic()
        done = self.offset + session_bytes
        if now - self.last_write >= self.JOURNAL_EVERY:
            self.last_write = now
            self.write(done)
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

    def write(self, done: int) -> None:
        """Progress is for `status` only: a write that fails (the state disk full) must never
        stop the transfer. Said once a minute at most."""
        try:
            self.journal.progress(self.sid, done)
        except (sqlite3.Error, JournalError) as err:  # a fleet's database away, too
            now = self.clock.monotonic()
            if now - self.last_warning >= self.WARN_EVERY:
                self.last_warning = now
                self.log.warning(
                    "cannot record progress in the journal; the transfer goes on",
                    error=str(err),
                    hint="free space on the state disk (a fleet: check the database)",
                )
