"""The fleet journal's writes: transitions (fenced or not, the SQLite journal's ALLOWED_FROM)
and the records a watch and a delivery make."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from hotfolder.metrics import COUNTERS
from hotfolder.model import FINAL, ManifestFormat, Problem, State, Submission
from hotfolder.state.journal import (
    ALLOWED_FROM,
    UPDATABLE,
    StaleTransition,
    _problems_detail,
    cap,
    files_json,
)
from hotfolder.state.pg_claims import Claim, PgClaims
from hotfolder.state.pg_connection import CHANNEL, PgConnection
from hotfolder.state.pg_schema import Conn


class PgTransitions(PgClaims):
    """Moves between states: allowed moves only, and fenced when a claim is given."""

    def start_manifest_session(self, claim: Claim, now: datetime, note: str = "") -> None:
        """Record the start of the manifest session, only if `claim` still holds a live lease:
        checked in this same transaction, under the row's lock, so it is ordered against any
        takeover. Raises LeaseLost (the manifest must then not be sent) or StaleTransition."""
        self.transition_fenced(claim, State.SENDING_MANIFEST, now, note=note, live=True)

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
        """As the SQLite journal's: allowed moves only, else StaleTransition. Not fenced: for
        operators (retry, hold) and single-node steps; a fleet's delivery uses the fenced one."""
        self._transition(sid, to, now, note, problems, fields, claim=None, live=False)

    def transition_fenced(
        self,
        claim: Claim,
        to: State,
        now: datetime,
        *,
        note: str = "",
        problems: tuple[Problem, ...] = (),
        live: bool = False,
        **fields: Any,
    ) -> None:
        """A transition that only the claim's holder may make (LeaseLost otherwise); reaching
        COMPLETE records this node as the one that delivered (and so archives) it."""
        self._transition(claim.sid, to, now, note, problems, fields, claim=claim, live=live)

    def _transition(
        self,
        sid: str,
        to: State,
        now: datetime,
        note: str,
        problems: tuple[Problem, ...],
        fields: dict[str, Any],
        *,
        claim: Claim | None,
        live: bool,
    ) -> None:
        allowed = ALLOWED_FROM[to]
        for key in fields:
            if key not in UPDATABLE:
                raise ValueError(f"not a journal field: {key}")
        with self._tx() as db:
            if claim is not None:
                self._fenced(db, claim, live=live)
            if problems:
                if "detail" not in fields:
                    found = db.execute(
                        "SELECT detail FROM submissions WHERE id = %s", (sid,)
                    ).fetchone()
                    fields["detail"] = found["detail"] if found else {}
                fields["detail"] = {**fields["detail"], **_problems_detail(problems)}
            if claim is not None and to is State.COMPLETE:
                fields["delivered_by"] = claim.node
            sets = ["state = %s", "updated_at = %s"]
            args: list[Any] = [str(to), now.isoformat()]
            for key, value in fields.items():
                sets.append(f"{key} = %s")
                args.append(_stored(key, value))
            # Column names come from UPDATABLE (checked above) or are our own; every value is
            # a bound parameter.
            sql = (
                f"UPDATE submissions SET {', '.join(sets)} "  # noqa: S608
                "WHERE id = %s AND state = ANY(%s) RETURNING watch"
            )
            got = db.execute(sql, (*args, sid, [str(s) for s in allowed])).fetchone()
            if got is None:
                raise StaleTransition(f"{sid}: cannot move to {to} from {_state(db, sid)}")
            self._log(db, sid, now, to, note)
        if to is State.FAILED:
            COUNTERS.failed(
                got["watch"], fields.get("error_code") or (problems[0].code if problems else "")
            )
        if to in FINAL:
            COUNTERS.ended(sid)

    def record_attempt(
        self, sid: str, now: datetime, attempt: int, code: str, message: str
    ) -> None:
        with self._tx() as db:
            got = db.execute(
                "UPDATE submissions SET attempts = attempts + 1, error_code = %s, "
                "error_message = %s, updated_at = %s WHERE id = %s RETURNING state",
                (code, cap(message), now.isoformat(), sid),
            ).fetchone()
            if got is not None:
                note = f"attempt {attempt} failed: {code}: {message}"
                self._log(db, sid, now, State(got["state"]), note)


class PgRecords(PgConnection):
    """What a watch records (pending, ready, failed) and a delivery's marks on a row."""

    def record_pending(
        self, sid: str, watch: str, manifest: PurePosixPath, now: datetime, detail: dict[str, Any]
    ) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO submissions (id, watch, manifest, state, detail, created_at, "
                "updated_at, node) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    sid,
                    watch,
                    str(manifest),
                    str(State.PENDING),
                    Jsonb(detail),
                    now.isoformat(),
                    now.isoformat(),
                    self.node,
                ),
            )
            if cur.rowcount:
                self._log(db, sid, now, State.PENDING, "seen")
                _close_earlier(db, watch, manifest, sid)
                return True
            db.execute(
                "UPDATE submissions SET detail = %s WHERE id = %s AND state = %s",
                (Jsonb(detail), sid, str(State.PENDING)),
            )
            return False

    def forget_pending(self, sid: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM submissions WHERE id = %s AND state = %s", (sid, str(State.PENDING))
            )
            if cur.rowcount:
                db.execute("DELETE FROM history WHERE submission_id = %s", (sid,))

    def record_ready(
        self, sub: Submission, now: datetime, detail: dict[str, Any] | None = None
    ) -> bool:
        """Ready to send, if new or pending; True if this call made it ready (on a fleet every
        node sees the manifest: only the first one's call counts, and wakes the others).
        False too while an earlier version of the same manifest file is on its way (the
        schema's one-live-submission-per-manifest index): it waits for that delivery."""
        with self._tx() as db:
            try:
                with db.transaction():  # a savepoint: the refusal leaves the rest alone
                    cur = self._upsert_ready(db, sub, now, detail)
            except pg_errors.UniqueViolation:
                return False
            if not cur.rowcount:
                return False
            note = f"{len(sub.files)} files, {sub.total_bytes} bytes"
            self._log(db, sub.id, now, State.READY, note)
            _close_earlier(db, sub.watch, sub.manifest.relpath, sub.id)
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, sub.id))
        COUNTERS.ready(sub.id)
        return True

    def _upsert_ready(
        self, db: Conn, sub: Submission, now: datetime, detail: dict[str, Any] | None
    ) -> psycopg.Cursor[DictRow]:
        return db.execute(
            "INSERT INTO submissions (id, watch, manifest, format, state, files, bytes_total,"
            " detail, created_at, updated_at, node) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, files = excluded.files, "
            "format = excluded.format, bytes_total = excluded.bytes_total, "
            "updated_at = excluded.updated_at, detail = excluded.detail "
            "WHERE submissions.state = 'pending'",
            (
                sub.id,
                sub.watch,
                str(sub.manifest.relpath),
                sub.format,
                str(State.READY),
                Jsonb(files_json(sub)),
                sub.total_bytes,
                Jsonb(detail or {}),
                now.isoformat(),
                now.isoformat(),
                self.node,
            ),
        )

    def record_failed(
        self,
        sid: str,
        watch: str,
        manifest: PurePosixPath,
        problems: tuple[Problem, ...],
        now: datetime,
        fmt: ManifestFormat | None = None,
        owner: str | None = None,
    ) -> bool:
        """Failed, if new or pending; False if another node decided it first (every node
        sees the same manifest, and only the first decision is acted on)."""
        first = problems[0]
        detail: dict[str, Any] = _problems_detail(problems)
        if owner is not None:
            detail["owner"] = owner
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO submissions (id, watch, manifest, format, state, error_code, "
                "error_message, detail, created_at, updated_at, node) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
                "error_code = excluded.error_code, error_message = excluded.error_message, "
                "detail = excluded.detail, updated_at = excluded.updated_at "
                "WHERE submissions.state = 'pending'",
                (
                    sid,
                    watch,
                    str(manifest),
                    fmt,
                    str(State.FAILED),
                    first.code,
                    cap(first.message),
                    Jsonb(detail),
                    now.isoformat(),
                    now.isoformat(),
                    self.node,
                ),
            )
            if not cur.rowcount:
                # Failed by this node already: its answer was lost (the connection dropped
                # at COMMIT) and the tracker asks again. Still its to quarantine and report.
                return bool(
                    db.execute(
                        "SELECT 1 FROM submissions s JOIN history h ON h.submission_id = s.id "
                        "WHERE s.id = %s AND s.state = %s AND h.state = %s AND h.node = %s",
                        (sid, str(State.FAILED), str(State.FAILED), self.node),
                    ).fetchone()
                )
            self._log(db, sid, now, State.FAILED, first.message)
            _close_earlier(db, watch, manifest, sid)
        COUNTERS.failed(watch, first.code)
        COUNTERS.ended(sid)
        return True

    def progress(self, sid: str, bytes_done: int) -> None:
        with self._tx() as db:
            found = db.execute(
                "UPDATE submissions SET bytes_done = %s WHERE id = %s RETURNING watch",
                (bytes_done, sid),
            ).fetchone()
        if found is not None:
            COUNTERS.progress(sid, found["watch"], bytes_done)

    def mark_postprocessed(self, sid: str, now: datetime, note: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE submissions SET postprocessed = true, updated_at = %s "
                "WHERE id = %s AND NOT postprocessed",
                (now.isoformat(), sid),
            )
            if cur.rowcount:
                self._log(db, sid, now, State.COMPLETE, note)

    def record_verify(
        self, sid: str, result: str, assets: dict[str, str], error: str | None = None
    ) -> None:
        verify: dict[str, Any] = {"result": result, "assets": assets}
        if error is not None:
            verify["error"] = cap(error)
        with self._tx() as db:
            db.execute(
                "UPDATE submissions SET detail = jsonb_set(detail, '{verify}', %s) WHERE id = %s",
                (Jsonb(verify), sid),
            )

    def mark_manifest_removed(self, sid: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE submissions SET detail = jsonb_set(detail, '{manifest_removed}', "
                "'true') WHERE id = %s",
                (sid,),
            )

    def forget(self, sid: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM submissions WHERE id = %s", (sid,))
            db.execute("DELETE FROM history WHERE submission_id = %s", (sid,))
            return cur.rowcount == 1


def _close_earlier(db: Conn, watch: str, manifest: PurePosixPath, sid: str) -> None:
    """Pending rows of the same manifest under another id: an earlier identity of the file
    (it was still being written), noted by a node killed before it looked again. No other
    node knows that id; nobody else would ever close them."""
    earlier = db.execute(
        "DELETE FROM submissions WHERE watch = %s AND state = %s AND manifest = %s "
        "AND id <> %s RETURNING id",
        (watch, str(State.PENDING), str(manifest), sid),
    ).fetchall()
    if earlier:
        db.execute(
            "DELETE FROM history WHERE submission_id = ANY(%s)", ([r["id"] for r in earlier],)
        )


def _state(db: Conn, sid: str) -> str:
    raw = db.execute("SELECT state FROM submissions WHERE id = %s", (sid,)).fetchone()
    return raw["state"] if raw else "nowhere (unknown id)"


def _stored(key: str, value: Any) -> Any:
    if key == "detail":
        return Jsonb(value)
    if key == "error_message" and isinstance(value, str):
        return cap(value)
    return value
