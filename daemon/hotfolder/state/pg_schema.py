"""The fleet journal's schema, created and migrated by hotfolder itself, one step at a time,
in one transaction that holds the version table's lock, so nodes starting together migrate
once."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import DictRow

from hotfolder.state.journal import JournalTooNew

Conn = psycopg.Connection[DictRow]

#: The states of a submission on its way (model.IN_FLIGHT), spelled out: a migration must
#: not change if the model's names ever do.
LIVE_STATES = ("queued", "sending-media", "media-sent", "sending-manifest")


def _v1_tables(db: Conn) -> None:
    """The SQLite journal's tables (at its version 2) plus the fleet's columns and tables.
    Times the daemon records (created_at, history.at) are its ISO strings, as in SQLite, so
    every Row reads the same; lease and heartbeat times are the database's timestamptz."""
    db.execute(
        """
        CREATE TABLE submissions (
            id            text PRIMARY KEY,
            watch         text NOT NULL,
            manifest      text NOT NULL,
            format        text,
            state         text NOT NULL,
            files         jsonb NOT NULL DEFAULT '[]',
            bytes_total   bigint NOT NULL DEFAULT 0,
            bytes_done    bigint NOT NULL DEFAULT 0,
            attempts      integer NOT NULL DEFAULT 0,
            error_code    text,
            error_message text,
            detail        jsonb NOT NULL DEFAULT '{}',
            postprocessed boolean NOT NULL DEFAULT false,
            created_at    text NOT NULL,
            updated_at    text NOT NULL,
            node          text NOT NULL,
            owner         text,
            lease_until   timestamptz,
            fence         bigint NOT NULL DEFAULT 0,
            delivered_by  text
        )"""
    )
    for name, columns in (
        ("submissions_created", "created_at, id"),
        ("submissions_watch", "watch, created_at, id"),
        ("submissions_state_created", "state, created_at, id"),
        ("submissions_watch_state", "watch, state, created_at, id"),
        ("submissions_owner", "(detail->>'owner'), created_at, id"),
    ):
        db.execute(f"CREATE INDEX {name} ON submissions ({columns})")
    db.execute(
        """
        CREATE TABLE history (
            seq           bigserial PRIMARY KEY,
            submission_id text NOT NULL,
            at            text NOT NULL,
            state         text NOT NULL,
            note          text NOT NULL DEFAULT '',
            node          text NOT NULL
        )"""
    )
    db.execute("CREATE INDEX history_submission ON history (submission_id, seq)")
    db.execute(
        """
        CREATE TABLE evidence (
            submission_id text NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
            session       text NOT NULL,
            kind          text NOT NULL,
            body          text NOT NULL DEFAULT '',
            node          text NOT NULL,
            fence         bigint NOT NULL,
            at            timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (submission_id, session, kind)
        )"""
    )
    db.execute(
        """
        CREATE TABLE nodes (
            name          text PRIMARY KEY,
            started_at    timestamptz NOT NULL,
            heartbeat_at  timestamptz NOT NULL,
            version       text NOT NULL
        )"""
    )


def _v2_one_live_submission_per_manifest(db: Conn) -> None:
    """One manifest file, one submission on its way at a time. A node's tracker waits for the
    delivery of an edited manifest's earlier version, but only for what it saw itself: a
    node that first looks after the edit would make the new version ready beside the old
    one, and both would send the same media."""
    live = ", ".join(f"'{s}'" for s in ("ready", *LIVE_STATES))
    db.execute(
        "CREATE UNIQUE INDEX submissions_one_live_per_manifest ON submissions "
        f"(watch, manifest) WHERE state IN ({live})"
    )


#: MIGRATIONS[n] takes a version-n database to version n+1 (version 0: no tables yet).
#: Append, never edit.
MIGRATIONS: tuple[Callable[[Conn], None], ...] = (
    _v1_tables,
    _v2_one_live_submission_per_manifest,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Conn, where: str) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction. The version table's lock (a
    table lock, released at commit) makes nodes that start together migrate one at a time."""
    for tries_left in (2, 1, 0):
        try:
            with db.transaction():
                db.execute("CREATE TABLE IF NOT EXISTS hotfolder_schema (version integer NOT NULL)")
                db.execute("LOCK TABLE hotfolder_schema IN ACCESS EXCLUSIVE MODE")
                found = db.execute("SELECT version FROM hotfolder_schema").fetchone()
                version = int(found["version"]) if found else 0
                if version > SCHEMA_VERSION:
                    raise JournalTooNew(
                        f"journal {where} has schema version {version}; this hotfolder knows "
                        f"versions up to {SCHEMA_VERSION} (a newer hotfolder wrote it)",
                        "upgrade hotfolder on this node to the fleet's version; a journal is "
                        "never taken back to an older version",
                    )
                for step in MIGRATIONS[version:]:
                    step(db)
                if found is None:
                    db.execute("INSERT INTO hotfolder_schema VALUES (%s)", (SCHEMA_VERSION,))
                elif version != SCHEMA_VERSION:
                    db.execute("UPDATE hotfolder_schema SET version = %s", (SCHEMA_VERSION,))
        except pg_errors.UniqueViolation:
            # Two nodes' CREATE TABLE IF NOT EXISTS raced on the catalogue: the other one made
            # it; ours rolled back, and the next try finds it and waits on its lock.
            if not tries_left:
                raise
        else:
            return
