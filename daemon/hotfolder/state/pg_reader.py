"""The fleet journal read by the web window (issue 13): `state.reader.JournalReader`'s answers,
from PostgreSQL, for every node's submissions, each with the node that holds or delivered it.

Its own small pool, so the page never takes a connection the daemon's claims and heartbeats
need. Each query is one READ ONLY transaction cut off after QUERY_SECONDS (statement_timeout),
as the SQLite reader's progress handler cuts its queries off: a slow client cannot pin the
server. Opening it registers no node and beats no heartbeat.

Lists are paged by key (created_at, then id, newest first) over the indexes pg_schema makes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg.rows import DictRow

from hotfolder.model import State
from hotfolder.state.pg_connection import FleetSettings, PgConnection
from hotfolder.state.pg_reads import ROW_COLUMNS, _row
from hotfolder.state.reader import (
    MAX_PAGE,
    PAGE,
    QUERY_SECONDS,
    Cursor,
    Filters,
    Page,
    _like_escape,
)
from hotfolder.state.rows import Row

#: Who dropped it (the manifest's owner), as pg_schema's submissions_owner index has it.
OWNER = "(detail->>'owner')"
#: A node's own work: what it holds now or delivered (as PgReads.counts and STATUS= count it).
OWN = "(owner = %s OR delivered_by = %s)"


class PgJournalReader(PgConnection):
    """Read-only answers for the window; `close` it (the pool runs threads)."""

    def __init__(self, url: str, *, query_seconds: float = QUERY_SECONDS, **kw: Any) -> None:
        self.query_seconds = query_seconds
        super().__init__(url, register=False, max_connections=2, **kw)

    @classmethod
    def open(cls, settings: FleetSettings, **kw: Any) -> PgJournalReader:
        """Raises JournalError (bad password source), JournalUnavailable or JournalTooNew."""
        return cls(settings.url, node=settings.node, password=settings.password(), **kw)

    def _query(self, sql: str, args: Iterable[object] = ()) -> list[DictRow]:
        with self._tx() as db:
            db.execute("SET TRANSACTION READ ONLY")
            db.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                (str(round(self.query_seconds * 1000)),),
            )
            return db.execute(sql, tuple(args)).fetchall()

    # -- one submission ---------------------------------------------------------------------

    def get(self, sid: str) -> Row | None:
        found = self._query(
            f"SELECT {ROW_COLUMNS} FROM submissions WHERE id = %s",  # noqa: S608 - ours
            (sid,),
        )
        return _row(found[0]) if found else None

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        found = self._query(
            "SELECT at, state, note FROM history WHERE submission_id = %s ORDER BY seq", (sid,)
        )
        return [(r["at"], r["state"], r["note"]) for r in found]

    # -- lists ------------------------------------------------------------------------------

    def page(self, filters: Filters, after: Cursor | None = None, limit: int = PAGE) -> Page:
        """Newest first, `limit` rows older than `after`, and the cursor of the next page."""
        limit = max(1, min(limit, MAX_PAGE))
        where, args = _where(filters)
        if after is not None:
            where.append("(created_at, id) < (%s, %s)")
            args += [after.created_at, after.id]
        sql = (
            f"SELECT {ROW_COLUMNS} FROM submissions"  # noqa: S608 - `where` is our own fragments
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY created_at DESC, id DESC LIMIT %s"
        )
        found = self._query(sql, [*args, limit + 1])
        rows = [_row(r) for r in found[:limit]]
        more = len(found) > limit
        return Page(rows, Cursor(rows[-1].created_at, rows[-1].id) if more and rows else None)

    def in_states(self, states: frozenset[State], limit: int) -> list[Row]:
        """The newest `limit` rows in any of `states` (the overview's lists)."""
        found = self._query(
            f"SELECT {ROW_COLUMNS} FROM submissions WHERE state = ANY(%s) "  # noqa: S608
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            ([str(s) for s in states], max(0, limit)),
        )
        return [_row(r) for r in found]

    def counts(self, node: str | None = None) -> dict[str, dict[State, int]]:
        """watch -> state -> how many: every node's, or with `node` only its own work (what
        /metrics counts, like STATUS=)."""
        own, args = ("", ()) if node is None else (f" WHERE {OWN}", (node, node))
        counts: dict[str, dict[State, int]] = {}
        for r in self._query(
            f"SELECT watch, state, COUNT(*) AS n FROM submissions{own} "  # noqa: S608 - ours
            "GROUP BY watch, state ORDER BY watch, state",
            args,
        ):
            counts.setdefault(str(r["watch"]), {})[State(r["state"])] = int(r["n"])
        return counts

    def oldest(self, state: State) -> dict[str, str]:
        """watch -> created_at of its oldest submission in `state`, the fleet's (a pending
        submission is nobody's yet: every node sees the same drop folder)."""
        found = self._query(
            "SELECT watch, MIN(created_at) AS at FROM submissions WHERE state = %s GROUP BY watch",
            (str(state),),
        )
        return {str(r["watch"]): str(r["at"]) for r in found}

    def owners(self) -> list[str]:
        """Who dropped anything."""
        found = self._query(
            f"SELECT DISTINCT {OWNER} AS v FROM submissions "  # noqa: S608 - our constant
            f"WHERE {OWNER} IS NOT NULL ORDER BY v"
        )
        return [str(r["v"]) for r in found]


def _where(filters: Filters) -> tuple[list[str], list[object]]:
    where: list[str] = []
    args: list[object] = []
    if filters.watch:
        where.append("watch = %s")
        args.append(filters.watch)
    if filters.state:
        where.append("state = %s")
        args.append(str(filters.state))
    if filters.owner:
        where.append(f"{OWNER} = %s")
        args.append(filters.owner)
    if filters.text:
        # ILIKE: case folded as SQLite's LIKE folds ASCII (a superset beyond it).
        pattern = "%" + _like_escape(filters.text) + "%"
        where.append(
            "(manifest ILIKE %s ESCAPE '\\' OR EXISTS (SELECT 1 FROM "
            "jsonb_array_elements(files) f WHERE f->>'relpath' ILIKE %s ESCAPE '\\'))"
        )
        args += [pattern, pattern]
    return where, args
