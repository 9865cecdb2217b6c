"""The state journal: every submission's state, in SQLite, one transaction per change.

Only this module writes the database. Every transition names the states it may leave, so a
stale writer (a worker racing a restart, an operator command) cannot move a submission
backwards. On start, `recover` settles what a crash left mid-way.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from hotfolder.model import (
    FINAL,
    FileIdentity,
    ManifestFormat,
    Problem,
    State,
    Submission,
    SubmissionFile,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id            TEXT PRIMARY KEY,
    watch         TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    format        TEXT,
    state         TEXT NOT NULL,
    files         TEXT NOT NULL DEFAULT '[]',
    bytes_total   INTEGER NOT NULL DEFAULT 0,
    bytes_done    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    detail        TEXT NOT NULL DEFAULT '{}',
    postprocessed INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_state ON submissions(state);
CREATE TABLE IF NOT EXISTS history (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    at            TEXT NOT NULL,
    state         TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT ''
);
"""


class StaleTransition(Exception):
    """The submission was not in a state this transition may leave."""


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    watch: str
    manifest: str
    format: str | None
    state: State
    files: list[dict[str, Any]]
    bytes_total: int
    bytes_done: int
    attempts: int
    error_code: str | None
    error_message: str | None
    detail: dict[str, Any]
    postprocessed: bool
    created_at: str
    updated_at: str

    def submission(self) -> Submission:
        files = [_file_from_json(f) for f in self.files]
        roles = [raw["role"] for raw in self.files]
        media = tuple(f for f, role in zip(files, roles, strict=True) if role != "manifest")
        manifest = next(f for f, role in zip(files, roles, strict=True) if role == "manifest")
        return Submission(
            self.id,
            self.watch,
            manifest,
            media,
            ManifestFormat(self.format or ManifestFormat.OOYALA_MRSS),
        )


def _file_to_json(f: SubmissionFile, role: str) -> dict[str, Any]:
    i = f.identity
    return {
        "relpath": str(f.relpath),
        "dest": str(f.dest),
        "role": role,
        "size": i.size,
        "mtime_ns": i.mtime_ns,
        "ctime_ns": i.ctime_ns,
        "inode": i.inode,
    }


def _file_from_json(raw: dict[str, Any]) -> SubmissionFile:
    return SubmissionFile(
        PurePosixPath(raw["relpath"]),
        PurePosixPath(raw["dest"]),
        FileIdentity(raw["size"], raw["mtime_ns"], raw["ctime_ns"], raw["inode"]),
    )


def files_json(sub: Submission) -> list[dict[str, Any]]:
    media = [_file_to_json(f, "media") for f in sub.media]
    return [*media, _file_to_json(sub.manifest, "manifest")]


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transition survives power loss, not only kill -9.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- reads ----------------------------------------------------------------------------

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

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        with self._lock:
            raws = self._db.execute(
                "SELECT at, state, note FROM history WHERE submission_id = ? ORDER BY seq", (sid,)
            )
            return [(r[0], r[1], r[2]) for r in raws.fetchall()]

    # -- writes ---------------------------------------------------------------------------

    def record_pending(
        self, sid: str, watch: str, manifest: PurePosixPath, now: datetime, detail: dict[str, Any]
    ) -> bool:
        """Note a submission that waits for files. True if it is new."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO submissions (id, watch, manifest, state, detail, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    watch,
                    str(manifest),
                    State.PENDING,
                    json.dumps(detail),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            if cur.rowcount:
                _log(db, sid, now, State.PENDING, "seen")
                return True
            db.execute(
                "UPDATE submissions SET detail = ? WHERE id = ? AND state = ?",
                (json.dumps(detail), sid, State.PENDING),
            )
            return False

    def forget_pending(self, sid: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM submissions WHERE id = ? AND state = ?", (sid, State.PENDING))
            db.execute(
                "DELETE FROM history WHERE submission_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM submissions WHERE id = ?)",
                (sid, sid),
            )

    def record_ready(
        self, sub: Submission, now: datetime, detail: dict[str, Any] | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO submissions (id, watch, manifest, format, state, files, bytes_total,"
                " detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, files = excluded.files, "
                "format = excluded.format, bytes_total = excluded.bytes_total, "
                "updated_at = excluded.updated_at, detail = excluded.detail "
                "WHERE state = 'pending'",
                (
                    sub.id,
                    sub.watch,
                    str(sub.manifest.relpath),
                    sub.format,
                    State.READY,
                    json.dumps(files_json(sub)),
                    sub.total_bytes,
                    json.dumps(detail or {}),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            _log(db, sub.id, now, State.READY, f"{len(sub.files)} files, {sub.total_bytes} bytes")

    def record_failed(
        self,
        sid: str,
        watch: str,
        manifest: PurePosixPath,
        problems: tuple[Problem, ...],
        now: datetime,
        fmt: ManifestFormat | None = None,
    ) -> None:
        """A submission that never got going: its manifest or its files broke a rule."""
        first = problems[0]
        detail = {"problems": [_problem_json(p) for p in problems]}
        with self._tx() as db:
            db.execute(
                "INSERT INTO submissions (id, watch, manifest, format, state, error_code, "
                "error_message, detail, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
                "error_code = excluded.error_code, error_message = excluded.error_message, "
                "detail = excluded.detail, updated_at = excluded.updated_at",
                (
                    sid,
                    watch,
                    str(manifest),
                    fmt,
                    State.FAILED,
                    first.code,
                    first.message,
                    json.dumps(detail),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            _log(db, sid, now, State.FAILED, first.message)

    def transition(
        self, sid: str, to: State, now: datetime, *, note: str = "", **fields: Any
    ) -> None:
        """Move `sid` to `to` if the move is allowed from its current state; else raise."""
        allowed = ALLOWED_FROM[to]
        sets = ["state = ?", "updated_at = ?"]
        args: list[Any] = [str(to), now.isoformat()]
        for key, value in fields.items():
            if key not in UPDATABLE:
                raise ValueError(f"not a journal field: {key}")
            sets.append(f"{key} = ?")
            args.append(json.dumps(value) if key == "detail" else value)
        with self._tx() as db:
            # Column names come from UPDATABLE (checked above); every value is a bound parameter.
            sql = (
                f"UPDATE submissions SET {', '.join(sets)} WHERE id = ? AND state IN "  # noqa: S608
                f"({','.join('?' * len(allowed))})"
            )
            cur = db.execute(sql, (*args, sid, *(str(s) for s in allowed)))
            if cur.rowcount != 1:
                raise StaleTransition(f"{sid}: cannot move to {to} from {self._state(db, sid)}")
            _log(db, sid, now, to, note)

    def record_attempt(
        self, sid: str, now: datetime, attempt: int, code: str, message: str
    ) -> None:
        """A failed try within the current state: counted, not a transition."""
        with self._tx() as db:
            db.execute(
                "UPDATE submissions SET attempts = attempts + 1, error_code = ?, "
                "error_message = ?, updated_at = ? WHERE id = ?",
                (code, message, now.isoformat(), sid),
            )
            state = self._state(db, sid)
            _log(db, sid, now, State(state), f"attempt {attempt} failed: {code}: {message}")

    def progress(self, sid: str, bytes_done: int) -> None:
        """Byte progress: not a transition, so no history line and no state check."""
        with self._tx() as db:
            db.execute("UPDATE submissions SET bytes_done = ? WHERE id = ?", (bytes_done, sid))

    def mark_postprocessed(self, sid: str, now: datetime, note: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE submissions SET postprocessed = 1, updated_at = ? WHERE id = ?",
                (now.isoformat(), sid),
            )
            _log(db, sid, now, State.COMPLETE, note)

    def record_verify(self, sid: str, result: str, assets: dict[str, str]) -> None:
        """The Backlot check's outcome, kept in the submission's detail for `status`."""
        with self._tx() as db:
            raw = db.execute("SELECT detail FROM submissions WHERE id = ?", (sid,)).fetchone()
            if raw is None:
                return
            detail = json.loads(raw[0])
            detail["verify"] = {"result": result, "assets": assets}
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


UPDATABLE = frozenset({"attempts", "error_code", "error_message", "bytes_done", "detail"})

ALLOWED_FROM: dict[State, frozenset[State]] = {
    State.PENDING: frozenset(),
    State.READY: frozenset(
        {State.PENDING, State.QUEUED, State.SENDING_MEDIA, State.HELD, State.FAILED}
    ),
    State.QUEUED: frozenset({State.READY}),
    State.SENDING_MEDIA: frozenset({State.QUEUED}),
    # back from sending-manifest only in recovery, when no manifest byte ever left
    State.MEDIA_SENT: frozenset({State.SENDING_MEDIA, State.SENDING_MANIFEST}),
    State.SENDING_MANIFEST: frozenset({State.MEDIA_SENT, State.QUEUED}),
    State.COMPLETE: frozenset({State.SENDING_MANIFEST}),
    State.FAILED: frozenset(
        {
            State.PENDING,
            State.READY,
            State.QUEUED,
            State.SENDING_MEDIA,
            State.MEDIA_SENT,
            State.SENDING_MANIFEST,
        }
    ),
    State.HELD: frozenset(
        {State.SENDING_MANIFEST, *FINAL - {State.HELD}, State.PENDING, State.READY, State.QUEUED}
    ),
}


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


def _log(db: sqlite3.Connection, sid: str, now: datetime, state: State, note: str) -> None:
    db.execute(
        "INSERT INTO history (submission_id, at, state, note) VALUES (?, ?, ?, ?)",
        (sid, now.isoformat(), str(state), note),
    )


def _problem_json(p: Problem) -> dict[str, Any]:
    return {"code": p.code, "message": p.message, "hint": p.hint, "path": p.path, "line": p.line}
