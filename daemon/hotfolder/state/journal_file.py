"""The SQLite journal's file: its tables and their migrations, and what makes a file on disk
fit to be the journal (private, an SQLite header, a schema this hotfolder knows). A damaged or
newer journal is never repaired or replaced here: the errors say what the admin can do."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hotfolder.state.rows import JournalHealth

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


def _v3_state_counts(db: sqlite3.Connection) -> None:
    """The overview's counts, kept by SQLite itself: counting through the (watch, state)
    index is still a step per row (15 ms of the overview at 100,000 rows). Triggers keep one
    row per (watch, state) exact inside the writer's own transaction, whatever statement
    changes a submission, so no writer can forget to; a pair that reaches 0 is dropped."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS state_counts (watch TEXT NOT NULL, state TEXT NOT NULL, "
        "n INTEGER NOT NULL, PRIMARY KEY (watch, state)) WITHOUT ROWID"
    )
    add = (
        "INSERT INTO state_counts (watch, state, n) VALUES (new.watch, new.state, 1) "
        "ON CONFLICT (watch, state) DO UPDATE SET n = n + 1;"
    )
    remove = (
        "UPDATE state_counts SET n = n - 1 WHERE watch = old.watch AND state = old.state; "
        "DELETE FROM state_counts WHERE watch = old.watch AND state = old.state AND n <= 0;"
    )
    for name, event, body in (
        ("state_counts_insert", "AFTER INSERT ON submissions", add),
        ("state_counts_delete", "AFTER DELETE ON submissions", remove),
        (
            "state_counts_update",
            "AFTER UPDATE OF state, watch ON submissions "
            "WHEN old.state IS NOT new.state OR old.watch IS NOT new.watch",
            remove + " " + add,
        ),
    ):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {event} BEGIN {body} END")
    db.execute("DELETE FROM state_counts")
    db.execute(
        "INSERT INTO state_counts (watch, state, n) "
        "SELECT watch, state, COUNT(*) FROM submissions GROUP BY watch, state"
    )


#: SQLite's trigram tokenizer (FTS5 over every 3 characters: a substring search by index)
#: arrived in 3.34; an older SQLite keeps the scan.
TRIGRAM = sqlite3.sqlite_version_info >= (3, 34, 0)
#: The names one submission is found by: its manifest's, then each file's, a line each.
_NAMES = (
    "{row}.manifest || coalesce((SELECT group_concat(json_extract(value, '$.relpath'), "
    "char(10)) FROM json_each({row}.files)), '')"
)


def _v4_name_search(db: sqlite3.Connection) -> None:
    """The window's text search by index: finding a part of a name scanned every row (145 ms
    at 100,000). `name_search` (FTS5, trigram) holds each submission's names under a key of
    `name_keys`: the submissions' own rowid may change on VACUUM (a TEXT primary key), so it
    cannot be the link. Triggers keep both as the rows change; the migration fills them."""
    if not TRIGRAM:
        return
    db.execute(
        "CREATE TABLE IF NOT EXISTS name_keys (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)"
    )
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS name_search USING fts5(names, tokenize = 'trigram')"
    )
    add = (
        "INSERT INTO name_keys (id) VALUES (new.id); "  # noqa: S608 - our own constant
        "INSERT INTO name_search (rowid, names) VALUES "
        f"((SELECT key FROM name_keys WHERE id = new.id), {_NAMES.format(row='new')});"
    )
    remove = (
        "DELETE FROM name_search WHERE rowid = (SELECT key FROM name_keys WHERE id = old.id); "
        "DELETE FROM name_keys WHERE id = old.id;"
    )
    for name, event, body in (
        ("name_search_insert", "AFTER INSERT ON submissions", add),
        ("name_search_delete", "AFTER DELETE ON submissions", remove),
        (
            "name_search_update",
            "AFTER UPDATE OF id, manifest, files ON submissions",
            remove + " " + add,
        ),
    ):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {event} BEGIN {body} END")
    db.execute("DELETE FROM name_search")
    db.execute("DELETE FROM name_keys")
    db.execute("INSERT INTO name_keys (id) SELECT id FROM submissions")
    db.execute(
        "INSERT INTO name_search (rowid, names) SELECT k.key, "  # noqa: S608 - our own constant
        f"{_NAMES.format(row='s')} FROM submissions s JOIN name_keys k ON k.id = s.id"
    )


#: MIGRATIONS[n] takes a version-n journal to version n+1. Append, never edit: a journal
#: written by any earlier release must come forward step by step.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_history_index,
    _v2_window_indexes,
    _v3_state_counts,
    _v4_name_search,
)
SCHEMA_VERSION = len(MIGRATIONS)


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


class JournalUnavailable(JournalError):
    """PostgreSQL cannot be reached (or dropped us mid-call): no new step may start. Defined
    here, not beside the PostgreSQL journal, so that catching it imports no database driver."""


class JournalTooNew(JournalError):
    """Written by a newer hotfolder whose schema this one does not know."""


def create_private(path: Path) -> None:
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


def check_header(path: Path) -> None:
    """Garbage is refused before SQLite opens it: SQLite would treat (and on close, delete)
    the -wal beside a file it cannot read, and the damaged journal is to be kept whole."""
    with path.open("rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise damaged(path, "it is not an SQLite database (its first bytes are wrong)")


def damaged(path: Path, reason: str) -> JournalDamaged:
    return JournalDamaged(
        f"journal {path} is damaged: {reason}",
        f"stop the daemon, then run `hotfolder journal reset --config <file>`: it renames "
        f"the damaged file to {path.name}{DAMAGED_SUFFIX}<time> (kept for recovery) and "
        "starts an empty journal. Submissions already delivered may then be sent again if "
        "their files are still in a drop folder (after_success: keep).",
    )


class JournalFile:
    """An open connection to the journal's file, checked and migrated, with its one lock.
    Raises JournalDamaged or JournalTooNew on open; never repairs or replaces the file."""

    def __init__(self, path: Path) -> None:
        create_private(path)
        self.path = path
        self.lock = threading.Lock()
        check_header(path)
        try:
            self.db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
        except sqlite3.DatabaseError as err:
            raise damaged(path, str(err)) from err
        try:
            self.db.row_factory = sqlite3.Row
            self._check_integrity()
            self.db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transition survives power loss, not only kill -9.
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise damaged(path, str(err)) from err
        except JournalError:
            self.db.close()
            raise
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def _check_integrity(self) -> None:
        found = [r[0] for r in self.db.execute("PRAGMA quick_check").fetchall()]
        if found != ["ok"]:
            raise damaged(self.path, "; ".join(str(f) for f in found[:3]))

    def _migrate(self) -> None:
        with self.tx() as db:
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
        with self.lock:
            self.db.close()

    def healthy(self) -> JournalHealth:
        """Is the file we write still the one at `path`? One stat, no lock."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return JournalHealth.MISSING
        if (st.st_dev, st.st_ino) != self._identity:
            return JournalHealth.REPLACED
        return JournalHealth.OK

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
