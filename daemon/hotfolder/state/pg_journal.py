"""The fleet journal: the same record as the SQLite journal, kept in PostgreSQL so that several
workstations on one shared drop folder deliver each submission exactly once (issue 13).

It answers every read and write the SQLite journal does (same rows, same ALLOWED_FROM, same
history), and adds what a fleet needs:

- `node`: every row and history line says which workstation wrote it.
- Claims: a node works on a submission only while it holds its lease. `claim` takes one row
  with `SELECT ... FOR UPDATE SKIP LOCKED` (two nodes racing get one claim, the other none),
  sets `owner` and `lease_until` and bumps the row's fencing counter `fence`. Leases are timed
  by the DATABASE's clock (`now()`), never a node's: a node whose clock is minutes off can
  neither steal a live lease nor keep a dead one.
- Fencing: writes that must come from the current holder (`transition_fenced`,
  `start_manifest_session`, `mark_attempt`) check owner and fence in the same transaction, under
  the row's lock, so they are ordered against any takeover: a node whose lease was taken over
  can never start a manifest session or let ascp read a manifest.
- Evidence: the attempt marker and the receipts that decide `held` live here, not in one
  node's state folder, so any node that takes a dead node's submission over decides as the
  dead node would have.
- `nodes`: one row per workstation with its heartbeat, for `hotfolder nodes`.
- Wake-ups: `record_ready` and `release` send NOTIFY; `Wakeups` listens. A lost notification
  only delays work until the next poll: nothing depends on it. No advisory locks (they vanish
  with a dropped connection, silently).

Faults: a database that cannot be reached makes every call raise `JournalUnavailable` (the
caller starts no new step), with a backoff between tries so a dead server is not hammered; the
pool replaces broken connections and the next call after the backoff carries on.

The schema is created and migrated by hotfolder itself, one step at a time, in one transaction
that holds the version table's lock, so nodes starting together migrate once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from hotfolder.clock import Clock, SystemClock
from hotfolder.credentials import CredentialError, read_secret
from hotfolder.metrics import COUNTERS
from hotfolder.model import FINAL, ManifestFormat, Problem, State, Submission
from hotfolder.state.journal import (
    ALLOWED_FROM,
    GENERATION_MARK,
    UPDATABLE,
    JournalError,
    JournalHealth,
    JournalTooNew,
    Row,
    StaleTransition,
    _problems_detail,
    cap,
    files_json,
)

Conn = psycopg.Connection[DictRow]

#: The NOTIFY channel that wakes idle nodes: a submission became claimable.
CHANNEL = "hotfolder_ready"
#: How long a claim lasts unless renewed by `heartbeat` (a sender renews it every few seconds).
DEFAULT_LEASE = timedelta(seconds=30)


class JournalUnavailable(JournalError):
    """PostgreSQL cannot be reached (or dropped us mid-call): no new step may start."""


class LeaseLost(StaleTransition):
    """A fenced write from a node that no longer holds the submission's lease."""


class Evidence(StrEnum):
    """What decides a submission taken over mid-manifest (transfer/faults): was the manifest
    ever readable by ascp (attempt), did a session's receipt name every file (receipt)."""

    ATTEMPT = "attempt"
    RECEIPT = "receipt"


@dataclass(frozen=True, slots=True)
class Claim:
    """A node's hold on one submission: valid while `fence` is the row's and the lease runs."""

    sid: str
    node: str
    fence: int
    lease_until: datetime
    taken_over_from: str | None = None  # the node whose lease had run out, if any


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age: timedelta  # measured by the database's clock, like the leases
    version: str


def default_node() -> str:
    """A node's name when the config gives none: the host name (unique within a fleet)."""
    return socket.gethostname()


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The config's `journal:` block (url, node, password_file | password_credential)."""

    url: str
    node: str | None = None
    password_file: Path | None = None
    password_credential: str | None = None

    def password(self) -> str | None:
        """Read when the journal opens, from the file or the systemd credential; never the
        URL, which is logged and shown by `status`."""
        if psycopg.conninfo.conninfo_to_dict(self.url).get("password"):
            raise JournalError(
                f"journal url {masked(self.url)} carries a password",
                "take it out of the URL and put it in password_file or password_credential "
                "(the URL is shown in logs and by hotfolder status)",
            )
        try:
            return read_secret(self.password_file, self.password_credential)
        except CredentialError as err:
            hint = "check journal.password_file / password_credential"
            raise JournalError(str(err), hint) from err


# -- schema -------------------------------------------------------------------------------


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


#: MIGRATIONS[n] takes a version-n database to version n+1 (version 0: no tables yet).
#: Append, never edit.
MIGRATIONS: tuple[Callable[[Conn], None], ...] = (_v1_tables,)
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


# -- connections ----------------------------------------------------------------------------


class Backoff:
    """After a failed call, further calls fail at once until `delay` has passed (doubling up
    to `longest`), so a node does not hammer a dead server; a success resets it."""

    def __init__(
        self, clock: Clock, shortest: float = 0.2, longest: float = 10.0, factor: float = 2.0
    ) -> None:
        self._clock = clock
        self.shortest, self.longest, self.factor = shortest, longest, factor
        self._delay = 0.0
        self._until = 0.0
        self._lock = threading.Lock()

    def waiting(self) -> float:
        """Seconds left before the next try may go to the server (0: go ahead)."""
        with self._lock:
            return max(0.0, self._until - self._clock.monotonic())

    def failed(self) -> None:
        with self._lock:
            self._delay = min(self.longest, max(self.shortest, self._delay * self.factor))
            self._until = self._clock.monotonic() + self._delay

    def succeeded(self) -> None:
        with self._lock:
            self._delay = 0.0
            self._until = 0.0


def masked(url: str) -> str:
    """The URL without any password in it, for messages and logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in sorted(info.items()) if v is not None)


class PgJournal:
    """One node's handle on the fleet journal. Raises JournalUnavailable or JournalTooNew on
    open; `close` it (the pool runs threads)."""

    def __init__(
        self,
        url: str,
        *,
        node: str | None = None,
        password: str | None = None,
        clock: Clock | None = None,
        lease: timedelta = DEFAULT_LEASE,
        max_connections: int = 4,
        connect_timeout: float = 5.0,
        version: str = "",
        register: bool = True,
    ) -> None:
        self.node = node or default_node()
        self.lease = lease
        self.where = masked(url)
        self._clock = clock or SystemClock()
        self._backoff = Backoff(self._clock)
        self._connect_timeout = connect_timeout
        self._conninfo = url
        # The password travels to libpq as a keyword, never in the URL, a log or argv.
        self._kwargs: dict[str, Any] = {
            "row_factory": dict_row,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": f"hotfolder {self.node}"[:63],
        }
        if password is not None:
            self._kwargs["password"] = password
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            kwargs=self._kwargs,
            min_size=1,
            max_size=max_connections,
            open=False,
            # Every connection is tried before it is handed out: one left broken by a server
            # restart is replaced instead of failing the next call.
            check=ConnectionPool.check_connection,
            timeout=connect_timeout,
            name=f"hotfolder-journal-{self.node}",
        )
        self.path = self.where  # what `status` names as "the journal"
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            with self._pool.connection() as db:
                migrate(db, self.where)
            if register:  # an operator's command reading the journal is not a node's start
                self.register(version)
        except (psycopg.OperationalError, PoolTimeout) as err:
            self._pool.close()
            raise self._unavailable(err) from err
        except BaseException:
            self._pool.close()  # its threads must not outlive a journal that never opened
            raise

    @classmethod
    def open(cls, settings: FleetSettings, **kw: Any) -> PgJournal:
        """The journal the config names; raises JournalError (bad password source) or
        JournalUnavailable / JournalTooNew like the constructor."""
        return cls(settings.url, node=settings.node, password=settings.password(), **kw)

    def close(self) -> None:
        self._pool.close()

    def healthy(self) -> JournalHealth:
        """OK unless the last call failed and the backoff still runs: the daemon's main loop
        asks each turn, and takes no new work while the database is away."""
        return JournalHealth.MISSING if self._backoff.waiting() else JournalHealth.OK

    def _unavailable(self, err: BaseException) -> JournalUnavailable:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return JournalUnavailable(
            f"journal {self.where} cannot be reached: {reason}",
            "check that PostgreSQL runs and this node may connect (pg_hba.conf, password); "
            "hotfolder retries with a backoff and starts no new step meanwhile",
        )

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        """One transaction on a pooled connection: committed when the block ends, rolled back
        if it raises. Connection faults become JournalUnavailable and start the backoff."""
        if self._backoff.waiting():
            raise JournalUnavailable(
                f"journal {self.where} is not reachable (retrying after a backoff)",
                "hotfolder retries by itself; check PostgreSQL",
            )
        try:
            with self._pool.connection(timeout=self._connect_timeout) as db:
                yield db
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as err:
            self._backoff.failed()
            raise self._unavailable(err) from err
        self._backoff.succeeded()

    # -- nodes ----------------------------------------------------------------------------

    def register(self, version: str = "") -> None:
        """This node is up (its start time and first heartbeat)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO nodes (name, started_at, heartbeat_at, version) "
                "VALUES (%s, now(), now(), %s) ON CONFLICT (name) DO UPDATE SET "
                "started_at = now(), heartbeat_at = now(), version = excluded.version",
                (self.node, version),
            )

    def nodes(self) -> list[NodeRow]:
        with self._tx() as db:
            raws = db.execute(
                "SELECT name, started_at, heartbeat_at, now() - heartbeat_at AS age, version "
                "FROM nodes ORDER BY name"
            ).fetchall()
        return [
            NodeRow(r["name"], r["started_at"], r["heartbeat_at"], r["age"], r["version"])
            for r in raws
        ]

    # -- claims ---------------------------------------------------------------------------

    def claim(self, sid: str, now: datetime) -> Claim | None:
        """Take `sid` for one step, or None: unknown, held by another node whose lease still
        runs (by the database's clock), or being claimed by another node this very moment.
        `now` (this node's clock) only dates the history line of a takeover."""
        with self._tx() as db:
            raw = db.execute(
                "SELECT owner, lease_until > now() AS live FROM submissions WHERE id = %s "
                "FOR UPDATE SKIP LOCKED",
                (sid,),
            ).fetchone()
            if raw is None or (raw["owner"] not in (None, self.node) and raw["live"]):
                return None
            return self._take(db, sid, raw["owner"], now)

    def claim_next(self, states: frozenset[State], now: datetime, limit: int = 1) -> list[Claim]:
        """Take up to `limit` submissions in `states` that nobody holds (or whose holder's
        lease ran out), oldest first; rows other nodes are claiming right now are skipped."""
        with self._tx() as db:
            raws = db.execute(
                "SELECT id, owner FROM submissions WHERE state = ANY(%s) "
                "AND (owner IS NULL OR lease_until <= now()) "
                "ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
                ([str(s) for s in states], limit),
            ).fetchall()
            return [self._take(db, r["id"], r["owner"], now) for r in raws]

    def _take(self, db: Conn, sid: str, previous: str | None, now: datetime) -> Claim:
        got = db.execute(
            "UPDATE submissions SET owner = %s, lease_until = now() + %s, fence = fence + 1 "
            "WHERE id = %s RETURNING fence, lease_until, state",
            (self.node, self.lease, sid),
        ).fetchone()
        if got is None:  # cannot happen: our SELECT ... FOR UPDATE holds the row's lock
            raise LeaseLost(f"{sid}: gone while being claimed")
        taken_from = previous if previous not in (None, self.node) else None
        if taken_from is not None:
            self._log(db, sid, now, State(got["state"]), f"taken over from {taken_from}")
        return Claim(sid, self.node, int(got["fence"]), got["lease_until"], taken_from)

    def heartbeat(self, claims: tuple[Claim, ...] = ()) -> tuple[Claim, ...]:
        """Renew this node's heartbeat and the leases of `claims` that are still ours (same
        fence); returns the renewed claims. A claim missing from the answer was lost."""
        with self._tx() as db:
            db.execute("UPDATE nodes SET heartbeat_at = now() WHERE name = %s", (self.node,))
            if not claims:
                return ()
            raws = db.execute(
                "UPDATE submissions s SET lease_until = now() + %s FROM "
                "unnest(%s::text[], %s::bigint[]) AS c(id, fence) "
                "WHERE s.id = c.id AND s.fence = c.fence AND s.owner = %s "
                "RETURNING s.id, s.fence, s.lease_until",
                (self.lease, [c.sid for c in claims], [c.fence for c in claims], self.node),
            ).fetchall()
        return tuple(Claim(r["id"], self.node, int(r["fence"]), r["lease_until"]) for r in raws)

    def release(self, claim: Claim) -> bool:
        """Give the submission back (the step is done or cannot go on here); other nodes are
        woken to look. False if the claim was no longer ours."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE submissions SET owner = NULL, lease_until = NULL "
                "WHERE id = %s AND owner = %s AND fence = %s",
                (claim.sid, self.node, claim.fence),
            )
            if cur.rowcount:
                db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, claim.sid))
            return cur.rowcount == 1

    def _fenced(self, db: Conn, claim: Claim, *, live: bool) -> dict[str, Any]:
        """Lock the row and check that `claim` still holds it (and, if `live`, that its lease
        runs by the database's clock); raise LeaseLost if not. Returns the locked row."""
        raw = db.execute(
            "SELECT state, owner, fence, lease_until > now() AS live FROM submissions "
            "WHERE id = %s FOR UPDATE",
            (claim.sid,),
        ).fetchone()
        if raw is None:
            raise LeaseLost(f"{claim.sid}: no such submission (forgotten?)")
        if raw["owner"] != claim.node or raw["fence"] != claim.fence:
            raise LeaseLost(
                f"{claim.sid}: {claim.node} lost its claim (fence {claim.fence}; now "
                f"{raw['owner'] or 'nobody'} holds fence {raw['fence']})"
            )
        if live and not raw["live"]:
            raise LeaseLost(f"{claim.sid}: {claim.node}'s lease ran out (fence {claim.fence})")
        return raw

    def start_manifest_session(self, claim: Claim, now: datetime, note: str = "") -> None:
        """Record the start of the manifest session, only if `claim` still holds a live lease:
        checked in this same transaction, under the row's lock, so it is ordered against any
        takeover. Raises LeaseLost (the manifest must then not be sent) or StaleTransition."""
        self.transition_fenced(claim, State.SENDING_MANIFEST, now, note=note, live=True)

    def mark_attempt(self, claim: Claim, session: str) -> None:
        """The attempt marker: ascp may now read the manifest. Fenced like the session's start,
        so a node taken over cannot write it after the new holder looked for it."""
        with self._tx() as db:
            self._fenced(db, claim, live=True)
            db.execute(
                "INSERT INTO evidence (submission_id, session, kind, node, fence) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (submission_id, session, kind) DO "
                "UPDATE SET node = excluded.node, fence = excluded.fence, at = now()",
                (claim.sid, session, str(Evidence.ATTEMPT), self.node, claim.fence),
            )

    def put_receipt(self, sid: str, session: str, body: str, fence: int) -> None:
        """A session's receipt (what ascp says it delivered). Not fenced: proof of delivery is
        kept whoever holds the lease now, so a new holder decides `complete`, not `held`."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO evidence (submission_id, session, kind, body, node, fence) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (submission_id, session, kind) "
                "DO UPDATE SET body = excluded.body, node = excluded.node, "
                "fence = excluded.fence, at = now()",
                (sid, session, str(Evidence.RECEIPT), body, self.node, fence),
            )

    def evidence(self, sid: str, session: str, kind: Evidence) -> str | None:
        """The body of that piece of evidence ('' for an attempt marker), or None."""
        with self._tx() as db:
            raw = db.execute(
                "SELECT body FROM evidence WHERE submission_id = %s AND session = %s AND kind = %s",
                (sid, session, str(kind)),
            ).fetchone()
        return None if raw is None else str(raw["body"])

    def clear_evidence(self, sid: str) -> None:
        """A submission sent again from the start (retry) begins without old evidence."""
        with self._tx() as db:
            db.execute("DELETE FROM evidence WHERE submission_id = %s", (sid,))

    # -- reads ----------------------------------------------------------------------------

    def get(self, sid: str) -> Row | None:
        with self._tx() as db:
            raw = db.execute("SELECT * FROM submissions WHERE id = %s", (sid,)).fetchone()
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
        sql, args = "SELECT * FROM submissions WHERE true", list[Any]()
        if states is not None:
            sql += " AND state = ANY(%s)"
            args.append([str(s) for s in states])
        if watch is not None:
            sql += " AND watch = %s"
            args.append(watch)
        with self._tx() as db:
            raws = db.execute(sql + " ORDER BY updated_at DESC LIMIT %s", (*args, limit)).fetchall()
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

    def ended_badly_since(self, since: datetime) -> list[str]:
        with self._tx() as db:
            raws = db.execute(
                "SELECT DISTINCT s.id FROM submissions s JOIN history h "
                "ON h.submission_id = s.id AND h.state = s.state "
                "WHERE s.state IN (%s, %s) AND h.at >= %s ORDER BY s.id",
                (str(State.FAILED), str(State.HELD), since.isoformat()),
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
                "SELECT * FROM submissions WHERE id = %s OR (id > %s AND id < %s) "
                "ORDER BY created_at DESC, length(id) DESC, id DESC LIMIT 1",
                (base, base + GENERATION_MARK, base + chr(ord(GENERATION_MARK) + 1)),
            ).fetchone()
        return _row(raw) if raw else None

    # -- writes ---------------------------------------------------------------------------

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
        node sees the manifest: only the first one's call counts, and wakes the others)."""
        with self._tx() as db:
            cur = db.execute(
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
            if not cur.rowcount:
                return False
            note = f"{len(sub.files)} files, {sub.total_bytes} bytes"
            self._log(db, sub.id, now, State.READY, note)
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, sub.id))
        COUNTERS.ready(sub.id)
        return True

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
        first = problems[0]
        detail: dict[str, Any] = _problems_detail(problems)
        if owner is not None:
            detail["owner"] = owner
        with self._tx() as db:
            db.execute(
                "INSERT INTO submissions (id, watch, manifest, format, state, error_code, "
                "error_message, detail, created_at, updated_at, node) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
                "error_code = excluded.error_code, error_message = excluded.error_message, "
                "detail = excluded.detail, updated_at = excluded.updated_at",
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
            self._log(db, sid, now, State.FAILED, first.message)
        COUNTERS.failed(watch, first.code)
        COUNTERS.ended(sid)

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

    def _log(self, db: Conn, sid: str, now: datetime, state: State, note: str) -> None:
        db.execute(
            "INSERT INTO history (submission_id, at, state, note, node) "
            "VALUES (%s, %s, %s, %s, %s)",
            (sid, now.isoformat(), str(state), cap(note), self.node),
        )


class Wakeups:
    """LISTEN on its own connection: `wait` returns early when some node made a submission
    claimable. Only a hint: a dropped connection or a lost notification costs one poll
    interval, never a submission (the caller polls the journal after every wait)."""

    def __init__(self, url: str, password: str | None = None, clock: Clock | None = None) -> None:
        self._url = url
        self._password = password
        self._clock = clock or SystemClock()
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()

    def wait(self, seconds: float) -> bool:
        """Up to `seconds`; True if woken by a notification."""
        try:
            conn = self._connected()
            for _ in conn.notifies(timeout=seconds, stop_after=1):
                return True
        except psycopg.Error:
            self._drop()
            self._clock.wait(self._stop, seconds)  # the poll interval, without the hint
        return False

    def _connected(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            # A None password is left out of the connection string by psycopg.
            conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=5, password=self._password
            )
            conn.execute(f"LISTEN {CHANNEL}")
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._stop.set()
        self._drop()


def _state(db: Conn, sid: str) -> str:
    raw = db.execute("SELECT state FROM submissions WHERE id = %s", (sid,)).fetchone()
    return raw["state"] if raw else "nowhere (unknown id)"


def _stored(key: str, value: Any) -> Any:
    if key == "detail":
        return Jsonb(value)
    if key == "error_message" and isinstance(value, str):
        return cap(value)
    return value


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
    )
