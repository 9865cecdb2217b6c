"""The SQLite journal's queries: rows by id, by state and watch, counts, history and the newest
generation of a manifest. Reads take the connection's lock and no transaction."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime

from hotfolder.model import State
from hotfolder.state.rows import GENERATION_MARK, Row


class JournalReads:
    """The read half of Journal (journal.py), which opens the file and writes."""

    _lock: threading.Lock
    _db: sqlite3.Connection

    def get(self, sid: str) -> Row | None:
        with self._lock:
            raw = self._db.execute("SELECT * FROM submissions WHERE id = ?", (sid,)).fetchone()
        return _row(raw) if raw else None

    def state_of(self, sid: str) -> State | None:
        with self._lock:
            raw = self._db.execute("SELECT state FROM submissions WHERE id = ?", (sid,)).fetchone()
        return State(raw[0]) if raw else None

    def is_settled(self, sid: str) -> bool:
        """True once the submission left `pending`: a rescan must not start it again."""
        state = self.state_of(sid)
        return state is not None and state is not State.PENDING

    def rows(
        self, states: frozenset[State] | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[Row]:
        sql, args = "SELECT * FROM submissions WHERE 1=1", []
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += [str(s) for s in states]
        if watch is not None:
            sql += " AND watch = ?"
            args.append(watch)
        sql += " ORDER BY updated_at DESC LIMIT ?"
        with self._lock:
            raws = self._db.execute(sql, (*args, limit)).fetchall()
        return [_row(r) for r in raws]

    def counts(self) -> dict[State, int]:
        with self._lock:
            raws = self._db.execute("SELECT state, COUNT(*) FROM submissions GROUP BY state")
            return {State(s): n for s, n in raws.fetchall()}

    def ended_badly_since(self, since: datetime) -> list[str]:
        """Submissions now failed or held that got there at or after `since` (for the exit
        status of `run --once`)."""
        bad = (str(State.FAILED), str(State.HELD))
        with self._lock:
            raws = self._db.execute(
                "SELECT DISTINCT s.id FROM submissions s JOIN history h "
                "ON h.submission_id = s.id AND h.state = s.state "
                "WHERE s.state IN (?, ?) AND h.at >= ? ORDER BY s.id",
                (*bad, since.isoformat()),
            )
            return [r[0] for r in raws.fetchall()]

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        with self._lock:
            raws = self._db.execute(
                "SELECT at, state, note FROM history WHERE submission_id = ? ORDER BY seq", (sid,)
            )
            return [(r[0], r[1], r[2]) for r in raws.fetchall()]

    def latest_generation(self, base: str) -> Row | None:
        """The newest submission for a manifest identity: id `base` or `base~N` (a new drop
        of the same bytes after the earlier one's manifest was taken away; see `known`)."""
        with self._lock:
            raw = self._db.execute(
                "SELECT * FROM submissions WHERE id = ? OR (id > ? AND id < ?) "
                "ORDER BY created_at DESC, length(id) DESC, id DESC LIMIT 1",
                (base, base + GENERATION_MARK, base + chr(ord(GENERATION_MARK) + 1)),
            ).fetchone()
        return _row(raw) if raw else None


def _row(raw: sqlite3.Row) -> Row:
    return Row(
        id=raw["id"],
        watch=raw["watch"],
        manifest=raw["manifest"],
        format=raw["format"],
        state=State(raw["state"]),
        files=json.loads(raw["files"]),
        bytes_total=raw["bytes_total"],
        bytes_done=raw["bytes_done"],
        attempts=raw["attempts"],
        error_code=raw["error_code"],
        error_message=raw["error_message"],
        detail=json.loads(raw["detail"]),
        postprocessed=bool(raw["postprocessed"]),
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
    )
