"""The journal read by someone who must never get in the daemon's way (the web window).

A connection of its own per thread, opened read-only (`mode=ro`, `query_only`): in WAL mode a
reader never blocks the daemon's writer and is never blocked by it, and it can hold no lock the
daemon needs. Each query runs in its own short read transaction and is cut off after
QUERY_SECONDS, so a slow client (or a slow disk) cannot pin an old snapshot for long.

Lists are paged by key (newest first: created_at, then id), not by offset, with the indexes of
journal schema version 2 behind every filter: page 1,000 of 100,000 rows costs what page 1
costs. The counts come from the table the journal's triggers keep (version 3), and a text of
3 or more characters is looked up in the names' trigram index (version 4) first.
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
#: The trigram index answers for texts of at least this many characters.
TRIGRAM = 3
#: The rows whose names (manifest and files, journal schema version 4) hold a phrase.
NAME_SEARCH = (
    "id IN (SELECT id FROM name_keys WHERE key IN "
    "(SELECT rowid FROM name_search WHERE name_search MATCH ?))"
)


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
            # Schema version 4 on an SQLite with the trigram tokenizer (see journal_file).
            self._local.name_search = bool(
                db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'name_search'"
                ).fetchone()
            )
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
        if filters.text and len(filters.text) >= TRIGRAM and self._name_search():
            # The trigram index finds the few rows whose names hold the text (case folded
            # more widely than LIKE's ASCII: a superset); the exact test in `where` decides.
            where.insert(0, NAME_SEARCH)
            args.insert(0, _fts_phrase(filters.text))
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

    def _name_search(self) -> bool:
        self._db()
        return bool(self._local.name_search)

    def in_states(self, states: frozenset[State], limit: int) -> list[Row]:
        """The newest `limit` rows in any of `states` (the overview's lists)."""
        rows: list[Row] = []
        for state in sorted(states):
            rows += self.page(Filters(state=state), limit=limit).rows
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rows[:limit]

    def counts(self) -> dict[str, dict[State, int]]:
        """watch -> state -> how many, as the journal's triggers keep them (schema version 3):
        one row per pair, whatever the number of submissions."""
        counts: dict[str, dict[State, int]] = {}
        for watch, state, n in self._query(
            "SELECT watch, state, n FROM state_counts WHERE n > 0 ORDER BY watch, state"
        ):
            counts.setdefault(str(watch), {})[State(state)] = int(n)
        return counts

    def oldest(self, state: State) -> dict[str, str]:
        """watch -> created_at of its oldest submission in `state` (one index seek each)."""
        found: dict[str, str] = {}
        for watch in self.watches():
            (at,) = self._query(
                "SELECT MIN(created_at) FROM submissions WHERE watch = ? AND state = ?",
                (watch, str(state)),
            )[0]
            if at is not None:
                found[watch] = str(at)
        return found

    def watches(self) -> list[str]:
        """The watches that have rows (the watch index skipped through, a seek per watch)."""
        return self._distinct("watch")

    def owners(self) -> list[str]:
        """Who dropped anything (the owner index skipped through, a seek per owner: a
        DISTINCT would read all of it, 23 ms at 100,000 rows)."""
        return self._distinct(OWNER)

    def _distinct(self, column: str) -> list[str]:
        # `column` is one of our own constants (an indexed column or OWNER), never a request's.
        found = self._query(
            "WITH RECURSIVE seen(v) AS ("  # noqa: S608
            f"SELECT MIN({column}) FROM submissions WHERE {column} IS NOT NULL "
            f"UNION ALL SELECT (SELECT MIN({column}) FROM submissions WHERE {column} > seen.v) "
            "FROM seen WHERE seen.v IS NOT NULL) SELECT v FROM seen WHERE v IS NOT NULL"
        )
        return [str(r[0]) for r in found]


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
        files = (
            "EXISTS (SELECT 1 FROM json_each(files) "
            "WHERE json_extract(value, '$.relpath') LIKE ? ESCAPE '\\')"
        )
        if _stored_as_is(filters.text):
            # The files' JSON text holds the name as typed: a LIKE on it first spares the
            # json_each of every row that cannot match (5x faster at 100,000 rows). It may
            # match a key or the destination, so the exact test stays behind it.
            where.append(f"(manifest LIKE ? ESCAPE '\\' OR (files LIKE ? ESCAPE '\\' AND {files}))")
            args += [pattern, pattern, pattern]
        else:
            where.append(f"(manifest LIKE ? ESCAPE '\\' OR {files})")
            args += [pattern, pattern]
    return where, args


def _fts_phrase(text: str) -> str:
    """`text` as one FTS5 string: any character stands for itself inside double quotes."""
    return '"' + text.replace('"', '""') + '"'


def _stored_as_is(text: str) -> bool:
    """Would json.dumps write `text` unchanged (printable ASCII, no quote, no backslash)?"""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
