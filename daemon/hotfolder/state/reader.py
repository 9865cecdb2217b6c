"""The journal read by someone who must never get in the daemon's way (the web window).

A connection of its own per thread, opened read-only (`mode=ro`, `query_only`): in WAL mode a
reader never blocks the daemon's writer and is never blocked by it, and it can hold no lock the
daemon needs. Each query runs in its own short read transaction and is cut off after
QUERY_SECONDS, so a slow client (or a slow disk) cannot pin an old snapshot for long.

Lists are paged by key (newest first: created_at, then id), not by offset, with the indexes of
journal schema version 2 behind every filter: page 1,000 of 100,000 rows costs what page 1
costs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hotfolder.model import State

# The journal's own row reader: one reading of its columns for both modules.
from hotfolder.state.journal import Row, _row

#: A read that takes longer than this is stopped (sqlite3.OperationalError: interrupted).
QUERY_SECONDS = 2.0
#: Who dropped it (the manifest's owner, a user name): kept in the row's detail, indexed by
#: this very expression (journal schema version 2), so it must be written the same way here.
OWNER = "json_extract(detail, '$.owner')"
#: Rows per list page, and the most a caller may ask for.
PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Filters:
    """What the list is narrowed to; None or '' means any."""

    watch: str | None = None
    state: State | None = None
    owner: str | None = None
    text: str | None = None  # part of the manifest's or a file's name


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends: the next page has rows strictly older than this one."""

    created_at: str
    id: str


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    next: Cursor | None  # None: this is the last page


class JournalReader:
    def __init__(self, path: Path, query_seconds: float = QUERY_SECONDS) -> None:
        self.path = path
        self.query_seconds = query_seconds
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{urllib.parse.quote(str(self.path))}?mode=ro"
            db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA query_only = 1")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def _query(self, sql: str, args: Iterable[object] = ()) -> list[sqlite3.Row]:
        db = self._db()
        deadline = time.monotonic() + self.query_seconds
        # Called every 10,000 SQLite steps; a true answer interrupts the query.
        db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        try:
            return db.execute(sql, tuple(args)).fetchall()
        finally:
            db.set_progress_handler(None, 0)

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()

    # -- one submission ---------------------------------------------------------------------

    def get(self, sid: str) -> Row | None:
        found = self._query("SELECT * FROM submissions WHERE id = ?", (sid,))
        return _row(found[0]) if found else None

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        found = self._query(
            "SELECT at, state, note FROM history WHERE submission_id = ? ORDER BY seq", (sid,)
        )
        return [(r[0], r[1], r[2]) for r in found]

    # -- lists ------------------------------------------------------------------------------

    def page(self, filters: Filters, after: Cursor | None = None, limit: int = PAGE) -> Page:
        """Newest first, `limit` rows older than `after`, and the cursor of the next page."""
        limit = max(1, min(limit, MAX_PAGE))
        where, args = _where(filters)
        if after is not None:
            where.append("(created_at, id) < (?, ?)")
            args += [after.created_at, after.id]
        sql = (
            "SELECT * FROM submissions"  # noqa: S608 - `where` is our own fixed fragments
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        found = self._query(sql, [*args, limit + 1])
        rows = [_row(r) for r in found[:limit]]
        more = len(found) > limit
        return Page(rows, Cursor(rows[-1].created_at, rows[-1].id) if more and rows else None)

    def in_states(self, states: frozenset[State], limit: int) -> list[Row]:
        """The newest `limit` rows in any of `states` (the overview's lists)."""
        rows: list[Row] = []
        for state in sorted(states):
            rows += self.page(Filters(state=state), limit=limit).rows
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rows[:limit]

    def counts(self) -> dict[str, dict[State, int]]:
        """watch -> state -> how many (a covering index: no row is read)."""
        found = self._query("SELECT watch, state, COUNT(*) FROM submissions GROUP BY watch, state")
        counts: dict[str, dict[State, int]] = {}
        for watch, state, n in found:
            counts.setdefault(watch, {})[State(state)] = n
        return counts

    def oldest(self, state: State) -> dict[str, str]:
        """watch -> created_at of its oldest submission in `state`."""
        found = self._query(
            "SELECT watch, MIN(created_at) FROM submissions WHERE state = ? GROUP BY watch",
            (str(state),),
        )
        return {str(watch): str(at) for watch, at in found}

    def owners(self) -> list[str]:
        found = self._query(
            f"SELECT DISTINCT {OWNER} FROM submissions WHERE {OWNER} IS NOT NULL ORDER BY 1"  # noqa: S608
        )
        return [r[0] for r in found]


def _where(filters: Filters) -> tuple[list[str], list[object]]:
    where: list[str] = []
    args: list[object] = []
    if filters.watch:
        where.append("watch = ?")
        args.append(filters.watch)
    if filters.state:
        where.append("state = ?")
        args.append(str(filters.state))
    if filters.owner:
        where.append(f"{OWNER} = ?")
        args.append(filters.owner)
    if filters.text:
        pattern = "%" + _like_escape(filters.text) + "%"
        where.append(
            "(manifest LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM json_each(files) "
            "WHERE json_extract(value, '$.relpath') LIKE ? ESCAPE '\\'))"
        )
        args += [pattern, pattern]
    return where, args


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
