"""The fleet journal's reads: the same answers as the SQLite journal's, and each row says
which workstation holds or delivered it (`Row.node`, for `hotfolder status` and the page)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import DictRow

from hotfolder.model import State
from hotfolder.state.journal import GENERATION_MARK, Row
from hotfolder.state.pg_connection import PgConnection

#: The node a row belongs to now: the holder of a live claim (by the database's clock, as the
#: leases are timed), else the node that delivered it; NULL for a row nobody holds or delivered.
HOLDER = "CASE WHEN owner IS NOT NULL AND lease_until > now() THEN owner ELSE delivered_by END"
#: What every read that builds a Row selects: the row's columns and its node.
ROW_COLUMNS = f"*, {HOLDER} AS held_or_delivered_by"


class PgReads(PgConnection):
    """Rows, states, counts and history, as the SQLite journal answers them."""

    def get(self, sid: str) -> Row | None:
        with self._tx() as db:
            raw = db.execute(
                f"SELECT {ROW_COLUMNS} FROM submissions WHERE id = %s",  # noqa: S608 - ours
                (sid,),
            ).fetchone()
        return _row(raw) if raw else None

    def owner_of(self, sid: str) -> tuple[str | None, int]:
        """Who holds `sid` now and its fence (for status and tests)."""
        with self._tx() as db:
            raw = db.execute(
                "SELECT owner, fence FROM submissions WHERE id = %s", (sid,)
            ).fetchone()
        return (None, 0) if raw is None else (raw["owner"], int(raw["fence"]))

    def delivered_by(self, sid: str) -> str | None:
        with self._tx() as db:
            raw = db.execute(
                "SELECT delivered_by FROM submissions WHERE id = %s", (sid,)
            ).fetchone()
        return None if raw is None else raw["delivered_by"]

    def state_of(self, sid: str) -> State | None:
        with self._tx() as db:
            raw = db.execute("SELECT state FROM submissions WHERE id = %s", (sid,)).fetchone()
        return State(raw["state"]) if raw else None

    def is_settled(self, sid: str) -> bool:
        state = self.state_of(sid)
        return state is not None and state is not State.PENDING

    def rows(
        self, states: frozenset[State] | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[Row]:
        sql, args = f"SELECT {ROW_COLUMNS} FROM submissions WHERE true", list[Any]()  # noqa: S608
        if states is not None:
            sql += " AND state = ANY(%s)"
            args.append([str(s) for s in states])
        if watch is not None:
            sql += " AND watch = %s"
            args.append(watch)
        with self._tx() as db:
            # A negative limit means all of them, as SQLite's LIMIT -1 (PostgreSQL: NULL).
            raws = db.execute(
                sql + " ORDER BY updated_at DESC LIMIT %s", (*args, limit if limit >= 0 else None)
            ).fetchall()
        return [_row(r) for r in raws]

    def counts(self, node: str | None = None) -> dict[State, int]:
        """Submissions by state; with `node`, only those it delivered or holds now (what its
        STATUS= line counts as its own work)."""
        with self._tx() as db:
            raws = db.execute(
                "SELECT state, COUNT(*) AS n FROM submissions WHERE %s::text IS NULL "
                "OR owner = %s OR delivered_by = %s GROUP BY state",
                (node, node, node),
            ).fetchall()
        return {State(r["state"]): int(r["n"]) for r in raws}

    def ended_badly_since(self, since: datetime, node: str | None = None) -> list[str]:
        """Ids now failed or held that got there at or after `since`; with `node`, only those
        that node put there (its own work, for `run --once`'s exit status)."""
        with self._tx() as db:
            raws = db.execute(
                "SELECT DISTINCT s.id FROM submissions s JOIN history h "
                "ON h.submission_id = s.id AND h.state = s.state "
                "WHERE s.state IN (%s, %s) AND h.at >= %s "
                "AND (%s::text IS NULL OR h.node = %s) ORDER BY s.id",
                (str(State.FAILED), str(State.HELD), since.isoformat(), node, node),
            ).fetchall()
        return [r["id"] for r in raws]

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        with self._tx() as db:
            raws = db.execute(
                "SELECT at, state, note FROM history WHERE submission_id = %s ORDER BY seq",
                (sid,),
            ).fetchall()
        return [(r["at"], r["state"], r["note"]) for r in raws]

    def latest_generation(self, base: str) -> Row | None:
        with self._tx() as db:
            raw = db.execute(
                f"SELECT {ROW_COLUMNS} FROM submissions "  # noqa: S608 - our own constant
                "WHERE id = %s OR (id > %s AND id < %s) "
                # By generation number, never by created_at: that is each node's own clock.
                "ORDER BY length(id) DESC, id DESC LIMIT 1",
                (base, base + GENERATION_MARK, base + chr(ord(GENERATION_MARK) + 1)),
            ).fetchone()
        return _row(raw) if raw else None


def _row(raw: DictRow) -> Row:
    return Row(
        id=raw["id"],
        watch=raw["watch"],
        manifest=raw["manifest"],
        format=raw["format"],
        state=State(raw["state"]),
        files=list(raw["files"]),
        bytes_total=int(raw["bytes_total"]),
        bytes_done=int(raw["bytes_done"]),
        attempts=int(raw["attempts"]),
        error_code=raw["error_code"],
        error_message=raw["error_message"],
        detail=dict(raw["detail"]),
        postprocessed=bool(raw["postprocessed"]),
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
        node=raw["held_or_delivered_by"],
    )
