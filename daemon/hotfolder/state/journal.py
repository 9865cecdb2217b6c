"""The state journal: every submission's state, in SQLite, one transaction per change.

Only this module writes the database. Every transition names the states it may leave, so a
stale writer (a worker racing a restart, an operator command) cannot move a submission
backwards. On start, `recover` settles what a crash left mid-way.

The journal is the one record of what was sent, so it is never replaced behind an admin's back:
a damaged file (`JournalDamaged`) or one written by a newer hotfolder (`JournalTooNew`) stops the
daemon with what to do, and only `hotfolder journal reset` moves a damaged file aside (kept,
never deleted) to start a new one. Its schema carries a version (`PRAGMA user_version`) and is
migrated forward, one step at a time, in one transaction, on open.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from hotfolder.metrics import COUNTERS
from hotfolder.model import FINAL, Problem, State
from hotfolder.state.journal_file import (
    COMPANIONS,
    DAMAGED_SUFFIX,
    MIGRATIONS,
    SCHEMA_V0,
    SCHEMA_VERSION,
    SQLITE_HEADER,
    JournalDamaged,
    JournalError,
    JournalFile,
    JournalTooNew,
)
from hotfolder.state.journal_intake import JournalIntake, _log
from hotfolder.state.journal_reads import _row
from hotfolder.state.rows import (
    ALLOWED_FROM,
    GENERATION_MARK,
    MAX_NOTE,
    MAX_PROBLEMS,
    UPDATABLE,
    JournalHealth,
    Row,
    StaleTransition,
    cap,
    files_json,
    problems_detail,
)

#: pg_journal's name for it, from before it moved to rows.py.
_problems_detail = problems_detail

# Callers (and pg_journal) import these from here, where they always were.
__all__ = [
    "ALLOWED_FROM",
    "COMPANIONS",
    "DAMAGED_SUFFIX",
    "GENERATION_MARK",
    "MAX_NOTE",
    "MAX_PROBLEMS",
    "MIGRATIONS",
    "SCHEMA_V0",
    "SCHEMA_VERSION",
    "SQLITE_HEADER",
    "UPDATABLE",
    "Journal",
    "JournalDamaged",
    "JournalError",
    "JournalHealth",
    "JournalTooNew",
    "Row",
    "StaleTransition",
    "_row",  # state/reader.py's import, from before it moved to journal_reads.py
    "cap",
    "check",
    "files_json",
    "reset",
]


class Journal(JournalIntake):
    """Raises JournalDamaged or JournalTooNew on open; never repairs or replaces the file."""

    def __init__(self, path: Path) -> None:
        self._file = JournalFile(path)
        self.path = path
        self._lock = self._file.lock
        self._db = self._file.db

    def close(self) -> None:
        self._file.close()

    def healthy(self) -> JournalHealth:
        """Is the file we write still the one at `path`? A journal deleted or replaced while
        the daemon runs would take every later transition into a file nobody will read: the
        daemon calls this each turn of its main loop and stops taking new work if not OK.
        One stat, no lock."""
        return self._file.healthy()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._file.tx()

    # -- writes ---------------------------------------------------------------------------

    def transition(
        self,
        sid: str,
        to: State,
        now: datetime,
        *,
        note: str = "",
        **fields: Any,
    ) -> None:
        """Move `sid` to `to` if the move is allowed from its current state; else raise.
        `problems=` (a tuple of Problem) is what REPORT.txt says about a failure, kept in the
        detail in the same transaction, so `status` and the window word it the same way."""
        allowed = ALLOWED_FROM[to]
        problems: tuple[Problem, ...] = tuple(fields.pop("problems", ()))
        for key in fields:
            if key not in UPDATABLE:
                raise ValueError(f"not a journal field: {key}")
        with self._tx() as db:
            if problems:
                if "detail" not in fields:
                    raw = db.execute("SELECT detail FROM submissions WHERE id = ?", (sid,))
                    found = raw.fetchone()
                    fields["detail"] = json.loads(found[0]) if found else {}
                fields["detail"] = {**fields["detail"], **problems_detail(problems)}
            sets = ["state = ?", "updated_at = ?"]
            args: list[Any] = [str(to), now.isoformat()]
            for key, value in fields.items():
                sets.append(f"{key} = ?")
                args.append(_stored(key, value))
            # Column names come from UPDATABLE (checked above); every value is a bound parameter.
            sql = (
                f"UPDATE submissions SET {', '.join(sets)} WHERE id = ? AND state IN "  # noqa: S608
                f"({','.join('?' * len(allowed))})"
            )
            cur = db.execute(sql, (*args, sid, *(str(s) for s in allowed)))
            if cur.rowcount != 1:
                raise StaleTransition(f"{sid}: cannot move to {to} from {self._state(db, sid)}")
            _log(db, sid, now, to, note)
            watch = db.execute("SELECT watch FROM submissions WHERE id = ?", (sid,)).fetchone()[0]
        if to is State.FAILED:
            COUNTERS.failed(
                watch, fields.get("error_code") or (problems[0].code if problems else "")
            )
        if to in FINAL:
            COUNTERS.ended(sid)

    def record_attempt(
        self, sid: str, now: datetime, attempt: int, code: str, message: str
    ) -> None:
        """A failed try within the current state: counted, not a transition."""
        with self._tx() as db:
            db.execute(
                "UPDATE submissions SET attempts = attempts + 1, error_code = ?, "
                "error_message = ?, updated_at = ? WHERE id = ?",
                (code, cap(message), now.isoformat(), sid),
            )
            state = self._state(db, sid)
            _log(db, sid, now, State(state), f"attempt {attempt} failed: {code}: {message}")

    def progress(self, sid: str, bytes_done: int) -> None:
        """Byte progress: not a transition, so no history line and no state check."""
        with self._tx() as db:
            found = db.execute(
                "UPDATE submissions SET bytes_done = ? WHERE id = ? RETURNING watch",
                (bytes_done, sid),
            ).fetchone()
        if found is not None:
            COUNTERS.progress(sid, found[0], bytes_done)

    def mark_postprocessed(self, sid: str, now: datetime, note: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE submissions SET postprocessed = 1, updated_at = ? WHERE id = ?",
                (now.isoformat(), sid),
            )
            _log(db, sid, now, State.COMPLETE, note)

    def forget_evidence(self, sid: str) -> None:
        """One workstation keeps its evidence in the targets' state folders, not here."""

    def tell_once(self, sid: str, about: str) -> bool:
        """One workstation: the caller's own memory (AdminHolds) keeps it to once."""
        return True

    def record_verify(
        self, sid: str, result: str, assets: dict[str, str], error: str | None = None
    ) -> None:
        """The Backlot check's outcome, kept in the submission's detail for `status`; `error`
        says why the check itself could not be made (it is retried)."""
        with self._tx() as db:
            raw = db.execute("SELECT detail FROM submissions WHERE id = ?", (sid,)).fetchone()
            if raw is None:
                return
            detail = json.loads(raw[0])
            detail["verify"] = {"result": result, "assets": assets}
            if error is not None:
                detail["verify"]["error"] = cap(error)
            db.execute("UPDATE submissions SET detail = ? WHERE id = ?", (json.dumps(detail), sid))

    def mark_manifest_removed(self, sid: str) -> None:
        """The submission's manifest left the drop folder (archived, deleted, quarantined):
        the same bytes seen there again are a new drop, not this submission."""
        with self._tx() as db:
            raw = db.execute("SELECT detail FROM submissions WHERE id = ?", (sid,)).fetchone()
            if raw is None:
                return
            detail = json.loads(raw[0])
            detail["manifest_removed"] = True
            db.execute("UPDATE submissions SET detail = ? WHERE id = ?", (json.dumps(detail), sid))

    def forget(self, sid: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM submissions WHERE id = ?", (sid,))
            db.execute("DELETE FROM history WHERE submission_id = ?", (sid,))
            return cur.rowcount == 1

    @staticmethod
    def _state(db: sqlite3.Connection, sid: str) -> str:
        raw = db.execute("SELECT state FROM submissions WHERE id = ?", (sid,)).fetchone()
        return raw[0] if raw else "nowhere (unknown id)"


def _stored(key: str, value: Any) -> Any:
    if key == "detail":
        return json.dumps(value)
    if key == "error_message" and isinstance(value, str):
        return cap(value)
    return value


def check(path: Path) -> JournalError | None:
    """What is wrong with the journal at `path`, or None if it opens cleanly (or is absent)."""
    if not path.exists():
        return None
    try:
        Journal(path).close()
    except JournalError as err:
        return err
    return None


def reset(path: Path, now: datetime) -> Path:
    """Move a damaged journal (and its -wal and -shm, which would otherwise be replayed into
    the new one) aside as <name>.damaged-<time>, then create an empty journal. Never deletes.
    Returns where the damaged file went."""
    aside = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{now.strftime('%Y%m%dT%H%M%SZ')}")
    if aside.exists():
        raise FileExistsError(f"{aside} exists already; nothing was moved")
    for suffix in COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.rename(companion, aside.with_name(aside.name + suffix))
    os.rename(path, aside)
    Journal(path).close()
    return aside
