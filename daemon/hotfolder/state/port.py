"""What the rest of hotfolder needs from a journal, and nothing more: the seam a second
implementation plugs into (state/pg_journal.py keeps it in PostgreSQL for fleets) without
touching its callers. SQLite (state/journal.py) stays the default.

Every state change names the states it may leave (ALLOWED_FROM in state/rows.py); a write
that finds the submission elsewhere raises StaleTransition and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from hotfolder.model import ManifestFormat, Problem, State, Submission
from hotfolder.state.rows import JournalHealth, Row


class JournalPort(Protocol):
    # -- the store itself -----------------------------------------------------------------

    def healthy(self) -> JournalHealth:
        """Is what we write still the journal everyone reads? Not OK: take no new work."""
        ...

    def close(self) -> None: ...

    @property
    def path(self) -> Path | str:
        """Where the journal is, for messages (a file, or a database URL without password)."""
        ...

    # -- rows -----------------------------------------------------------------------------

    def get(self, sid: str) -> Row | None: ...

    def state_of(self, sid: str) -> State | None: ...

    def is_settled(self, sid: str) -> bool:
        """True once the submission left `pending`: a rescan must not start it again."""
        ...

    def rows(
        self, states: frozenset[State] | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[Row]:
        """Rows by state (and watch), most recently changed first."""
        ...

    def counts(self) -> dict[State, int]: ...

    def ended_badly_since(self, since: datetime) -> list[str]:
        """Ids now failed or held that got there at or after `since`."""
        ...

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        """(at, state, note) per change, oldest first."""
        ...

    # -- generations: the same manifest bytes dropped again after ours left ----------------

    def latest_generation(self, base: str) -> Row | None: ...

    def mark_manifest_removed(self, sid: str) -> None:
        """Evidence that the manifest left the drop folder: the same bytes there again are
        a new drop (a new generation), not this submission."""
        ...

    # -- transitions ------------------------------------------------------------------------

    def record_pending(
        self, sid: str, watch: str, manifest: PurePosixPath, now: datetime, detail: dict[str, Any]
    ) -> bool:
        """True if the submission is new."""
        ...

    def forget_pending(self, sid: str) -> None: ...

    def record_ready(
        self, sub: Submission, now: datetime, detail: dict[str, Any] | None = None
    ) -> bool | None:
        """The fleet journal says whether this call made it ready (every node sees it)."""
        ...

    def record_failed(
        self,
        sid: str,
        watch: str,
        manifest: PurePosixPath,
        problems: tuple[Problem, ...],
        now: datetime,
        fmt: ManifestFormat | None = None,
        owner: str | None = None,
    ) -> bool | None:
        """The fleet journal says False when another node decided the submission first (it
        quarantines and reports it, not this one)."""
        ...

    def transition(
        self,
        sid: str,
        to: State,
        now: datetime,
        *,
        note: str = "",
        problems: tuple[Problem, ...] = (),
        **fields: Any,
    ) -> None:
        """Move `sid` to `to` if ALLOWED_FROM[to] holds its state; else StaleTransition."""
        ...

    def forget(self, sid: str) -> bool: ...

    # -- within a state: attempts, progress, what happened after ---------------------------

    def record_attempt(
        self, sid: str, now: datetime, attempt: int, code: str, message: str
    ) -> None: ...

    def progress(self, sid: str, bytes_done: int) -> None: ...

    def mark_postprocessed(self, sid: str, now: datetime, note: str) -> None: ...

    def record_verify(
        self, sid: str, result: str, assets: dict[str, str], error: str | None = None
    ) -> None: ...

    def forget_evidence(self, sid: str) -> None:
        """An operator releases the submission: what a fleet's journal kept as evidence of
        its sessions (attempt markers, receipts) no longer decides its next sessions."""
        ...

    def tell_once(self, sid: str, about: str) -> bool:
        """True for the first caller only, for this submission and `about` (an alert's
        key): in a fleet every node sees every hold, and one of them tells people."""
        ...
