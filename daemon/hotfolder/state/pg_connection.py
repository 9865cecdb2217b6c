"""The fleet journal's connection to PostgreSQL: the config's `journal:` block, the pool,
one transaction per call, and the backoff that keeps a node from hammering a dead server.

Faults: a database that cannot be reached makes every call raise `JournalUnavailable` (the
caller starts no new step), with a backoff between tries; the pool replaces broken
connections and the next call after the backoff carries on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from hotfolder.clock import Clock, SystemClock
from hotfolder.config.fleet import JournalSettings
from hotfolder.credentials import CredentialError, read_secret
from hotfolder.model import State
from hotfolder.state.journal import JournalError, JournalHealth, cap
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.pg_schema import Conn, migrate

#: The NOTIFY channel that wakes idle nodes: a submission became claimable.
CHANNEL = "hotfolder_ready"


#: How long a claim lasts unless renewed by `heartbeat` (a sender renews it every few seconds).
DEFAULT_LEASE = timedelta(seconds=30)


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

    @classmethod
    def of(cls, given: JournalSettings) -> FleetSettings:
        """The config's typed `journal:` block, as the fleet journal opens it."""
        secret = given.password
        return cls(given.url, given.node, secret.file, secret.credential)

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


class PgConnection:
    """The pool and the transaction every fleet-journal call runs in (the claims, reads and
    writes build on it). Raises JournalUnavailable or JournalTooNew on open; `close` it (the
    pool runs threads)."""

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

    def close(self) -> None:
        self._pool.close()

    def wakeups(self) -> Wakeups:
        """A listener for this journal's notifications, on a connection of its own."""
        return Wakeups(self._conninfo, self._kwargs.get("password"), self._clock)

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

    def register(self, version: str = "") -> None:
        """This node is up (its start time and first heartbeat). Raises NodeNameInUse while
        another node of this name beats: two workstations with one name (a cloned image's
        host name) would each take the other's claims for their own."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO nodes (name, started_at, heartbeat_at, version) "
                "VALUES (%s, now(), now(), %s) ON CONFLICT (name) DO UPDATE SET "
                "started_at = now(), heartbeat_at = now(), version = excluded.version "
                "WHERE nodes.heartbeat_at <= now() - %s",
                (self.node, version, self.lease),
            )
        if not cur.rowcount:
            raise NodeNameInUse(
                f"journal {self.where}: another node named {self.node!r} is alive (its "
                "heartbeat is younger than its lease)",
                "give each workstation its own journal.node; if that node has just died, "
                "this one starts once its lease has run out",
            )

    def retire(self) -> None:
        """This node stops: its name is free at once (a restart need not wait a lease)."""
        with self._tx() as db:
            db.execute(
                "UPDATE nodes SET heartbeat_at = now() - %s WHERE name = %s",
                (self.lease, self.node),
            )

    def _log(self, db: Conn, sid: str, now: datetime, state: State, note: str) -> None:
        db.execute(
            "INSERT INTO history (submission_id, at, state, note, node) "
            "VALUES (%s, %s, %s, %s, %s)",
            (sid, now.isoformat(), str(state), cap(note), self.node),
        )


class NodeNameInUse(JournalUnavailable):
    """Another live node has this node's name: waited for at start, like a database away."""


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
