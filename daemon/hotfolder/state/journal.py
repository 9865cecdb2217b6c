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
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from hotfolder.metrics import COUNTERS
from hotfolder.model import (
    FINAL,
    FileIdentity,
    ManifestFormat,
    Problem,
    State,
    Submission,
    SubmissionFile,
)

#: Version 0: the tables below as shipped in 0.1.0, before the journal carried a version.
SCHEMA_V0 = """
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


def _v1_history_index(db: sqlite3.Connection) -> None:
    """`status` and recovery read one submission's history: find it without a full scan."""
    db.execute("CREATE INDEX IF NOT EXISTS history_submission ON history(submission_id, seq)")


def _v2_window_indexes(db: sqlite3.Connection) -> None:
    """The web window lists submissions newest first, filtered by watch, state or who dropped
    them (the manifest's owner, kept in the detail), a page at a time by key: an index per
    filter in that order, so page 1,000 of 100,000 rows costs what page 1 costs, and (watch,
    state) counts the overview without reading a row. The state index of version 0 is a prefix
    of the new one."""
    for name, columns in (
        ("submissions_created", "created_at, id"),
        ("submissions_watch", "watch, created_at, id"),
        ("submissions_state_created", "state, created_at, id"),
        ("submissions_watch_state", "watch, state, created_at, id"),
        ("submissions_owner", "json_extract(detail, '$.owner'), created_at, id"),
    ):
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON submissions({columns})")
    db.execute("DROP INDEX IF EXISTS submissions_state")


#: MIGRATIONS[n] takes a version-n journal to version n+1. Append, never edit: a journal
#: written by any earlier release must come forward step by step.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_history_index,
    _v2_window_indexes,
)
SCHEMA_VERSION = len(MIGRATIONS)

#: The most the journal keeps of one error message or history note (a 100k-row CSV once made
#: a 1.4 MB one); the report and the log say the rest.
MAX_NOTE = 2000
#: The most problems kept per failed submission (one per CSV row can be 100,000).
MAX_PROBLEMS = 50
#: Files moved aside by `reset`, beside the journal: journal.sqlite.damaged-<UTC time>.
DAMAGED_SUFFIX = ".damaged-"
SQLITE_HEADER = b"SQLite format 3\x00"
#: SQLite's companions of the main file: they belong to it and move with it.
COMPANIONS = ("-wal", "-shm")


class JournalError(Exception):
    """The journal cannot be used as it is; `hint` says what the admin can do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class JournalDamaged(JournalError):
    """Not a readable SQLite journal: garbage, truncated, or failing its integrity check."""


class JournalTooNew(JournalError):
    """Written by a newer hotfolder whose schema this one does not know."""


class JournalHealth(StrEnum):
    """Is the file we write still the journal at `path`? (`Journal.healthy`)"""

    OK = "ok"
    MISSING = "missing"  # deleted (or moved away) while open: writes go to an unlinked file
    REPLACED = "replaced"  # another file now has its name: writes go to the old one


def cap(text: str, limit: int = MAX_NOTE) -> str:
    """At most `limit` characters of `text`, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


#: Between a submission's base id and its generation: `ep1-0a1b2c3d4e~2`.
GENERATION_MARK = "~"


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
        "device": i.device,
    }


def _file_from_json(raw: dict[str, Any]) -> SubmissionFile:
    return SubmissionFile(
        PurePosixPath(raw["relpath"]),
        PurePosixPath(raw["dest"]),
        FileIdentity(
            raw["size"], raw["mtime_ns"], raw["ctime_ns"], raw["inode"], raw.get("device", 0)
        ),
    )


def files_json(sub: Submission) -> list[dict[str, Any]]:
    media = [_file_to_json(f, "media") for f in sub.media]
    return [*media, _file_to_json(sub.manifest, "manifest")]


class Journal:
    """Raises JournalDamaged or JournalTooNew on open; never repairs or replaces the file."""

    def __init__(self, path: Path) -> None:
        _create_private(path)
        self.path = path
        self._lock = threading.Lock()
        _check_header(path)
        try:
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
        except sqlite3.DatabaseError as err:
            raise _damaged(path, str(err)) from err
        try:
            self._db.row_factory = sqlite3.Row
            self._check_integrity()
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transition survives power loss, not only kill -9.
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise _damaged(path, str(err)) from err
        except JournalError:
            self._db.close()
            raise
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def _check_integrity(self) -> None:
        found = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        if found != ["ok"]:
            raise _damaged(self.path, "; ".join(str(f) for f in found[:3]))

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise JournalTooNew(
                    f"journal {self.path} has schema version {version}; this hotfolder knows "
                    f"versions up to {SCHEMA_VERSION} (it was written by a newer hotfolder)",
                    "install that newer hotfolder again (the journal is left as it is); a "
                    "journal is never taken back to an older version",
                )
            if version == 0:
                # A new file, or one from 0.1.0: the same tables either way.
                for statement in SCHEMA_V0.split(";"):
                    if statement.strip():
                        db.execute(statement)
            for step in MIGRATIONS[version:]:
                step(db)
            if version != SCHEMA_VERSION:
                # PRAGMA takes no bound parameter; SCHEMA_VERSION is our own integer.
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def healthy(self) -> JournalHealth:
        """Is the file we write still the one at `path`? A journal deleted or replaced while
        the daemon runs would take every later transition into a file nobody will read: the
        daemon calls this each turn of its main loop and stops taking new work if not OK.
        One stat, no lock."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return JournalHealth.MISSING
        if (st.st_dev, st.st_ino) != self._identity:
            return JournalHealth.REPLACED
        return JournalHealth.OK

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
        COUNTERS.ready(sub.id)

    def record_failed(
        self,
        sid: str,
        watch: str,
        manifest: PurePosixPath,
        problems: tuple[Problem, ...],
        now: datetime,
        fmt: ManifestFormat | None = None,
        owner: str | None = None,
    ) -> None:
        """A submission that never got going: its manifest or its files broke a rule.
        `owner`: who dropped it (the manifest's owner), for the window and the editor's mail."""
        first = problems[0]
        detail: dict[str, Any] = _problems_detail(problems)
        if owner is not None:
            detail["owner"] = owner
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
                    cap(first.message),
                    json.dumps(detail),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            _log(db, sid, now, State.FAILED, first.message)
        COUNTERS.failed(watch, first.code)
        COUNTERS.ended(sid)

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
                fields["detail"] = {**fields["detail"], **_problems_detail(problems)}
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


UPDATABLE = frozenset({"attempts", "error_code", "error_message", "bytes_done", "detail"})

ALLOWED_FROM: dict[State, frozenset[State]] = {
    State.PENDING: frozenset(),
    State.READY: frozenset(
        {State.PENDING, State.QUEUED, State.SENDING_MEDIA, State.HELD, State.FAILED}
    ),
    State.QUEUED: frozenset({State.READY}),
    State.SENDING_MEDIA: frozenset({State.QUEUED}),
    # back from sending-manifest only in recovery, when no manifest byte ever left; from
    # held when an admin fault before the manifest left is gone (delivery/faults)
    State.MEDIA_SENT: frozenset({State.SENDING_MEDIA, State.SENDING_MANIFEST, State.HELD}),
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
        {
            State.QUEUED,  # these four: an admin fault or an unexpected error mid-delivery
            State.SENDING_MEDIA,
            State.MEDIA_SENT,
            State.SENDING_MANIFEST,
            *FINAL - {State.HELD},
            State.PENDING,
            State.READY,
        }
    ),
}


def _stored(key: str, value: Any) -> Any:
    if key == "detail":
        return json.dumps(value)
    if key == "error_message" and isinstance(value, str):
        return cap(value)
    return value


def _create_private(path: Path) -> None:
    """The journal says what was sent where and why it failed: for the daemon's user only
    (its folder 0700 when we make it, the file 0600; SQLite gives -wal and -shm the file's
    mode), whatever the umask."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _check_header(path: Path) -> None:
    """Garbage is refused before SQLite opens it: SQLite would treat (and on close, delete)
    the -wal beside a file it cannot read, and the damaged journal is to be kept whole."""
    with path.open("rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise _damaged(path, "it is not an SQLite database (its first bytes are wrong)")


def _damaged(path: Path, reason: str) -> JournalDamaged:
    return JournalDamaged(
        f"journal {path} is damaged: {reason}",
        f"stop the daemon, then run `hotfolder journal reset --config <file>`: it renames "
        f"the damaged file to {path.name}{DAMAGED_SUFFIX}<time> (kept for recovery) and "
        "starts an empty journal. Submissions already delivered may then be sent again if "
        "their files are still in a drop folder (after_success: keep).",
    )


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
        (sid, now.isoformat(), str(state), cap(note)),
    )


def _problems_detail(problems: tuple[Problem, ...]) -> dict[str, Any]:
    detail: dict[str, Any] = {"problems": [_problem_json(p) for p in problems[:MAX_PROBLEMS]]}
    if len(problems) > MAX_PROBLEMS:
        detail["problems_left_out"] = len(problems) - MAX_PROBLEMS
    return detail


def _problem_json(p: Problem) -> dict[str, Any]:
    return {
        "code": p.code,
        "message": cap(p.message),
        "hint": cap(p.hint),
        "path": p.path,
        "line": p.line,
    }
