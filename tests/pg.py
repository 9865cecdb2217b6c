"""A throwaway PostgreSQL server for tests (issue 13): Debian's own binaries, a cluster made by
initdb in a temporary folder, listening on a free loopback port only (no Unix socket), removed
afterwards. Nothing of the host's PostgreSQL (its clusters, its port 5432) is touched.

initdb and postgres refuse to run as root, and tests/run runs as root: then the server runs as
the `postgres` system user that Debian's package creates (runuser; no password, no sudo rule),
in a folder handed to it. As any other user it runs as that user.

Start waits by polling pg_isready; stop is by pid (pg_ctl stop -m immediate, then the
postmaster's pid and its children must be gone, else SIGKILL by pid) and removes the folder.
Every server process ever started is remembered, so conftest can flag a leftover one at the end
of the session.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: The role hotfolder connects as in tests: a plain login role owning its database, the grants
#: the README asks an admin for (no superuser).
APP_ROLE = "hotfolder"
ADMIN_ROLE = "hotfolder_admin"
#: postmaster pids started by this process (tests.pg), for the end-of-session leftover check.
STARTED: set[int] = set()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("tests run as root and there is no `postgres` user: run packaging/dev-env")


def alive(pid: int) -> bool:
    """True if `pid` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def leftovers() -> list[int]:
    """Server processes (postmasters started here, and their children) still alive."""
    living = [pid for pid in STARTED if alive(pid)]
    return living + [child for pid in living for child in _children(pid)]


def _wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    # tests.helpers imports the daemon; conftest loads this module, so a daemon that does not
    # import (mid-refactor) must not take every test down with it: imported when first used.
    from tests.helpers import wait_until  # noqa: PLC0415

    return wait_until(condition, timeout, what)


@dataclass
class PgServer:
    """One cluster. `url(db)` connects as the admin role (superuser); `app_url(db)` as the
    plain `hotfolder` role; both with `password` (given to psycopg, never in the URL)."""

    root: Path
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    pid: int | None = None
    _user: pwd.struct_passwd | None = None
    _dbs: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres", role: str = ADMIN_ROLE) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{db}"

    def app_url(self, db: str) -> str:
        return self.url(db, APP_ROLE)

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(PG_BIN / tool), *args]
        if self._user is not None:
            return ["runuser", "-u", self._user.pw_name, "--", *argv]
        return argv

    def init(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.fail(f"no PostgreSQL 15 in {PG_BIN}: run packaging/dev-env")
        self._user = _run_as()
        self.root.chmod(0o700)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        subprocess.run(
            self._argv(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                ADMIN_ROLE,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            # Loopback TCP only; no socket in /run/postgresql (the host's). fsync off: a test
            # cluster that dies with the test has nothing to keep (crashes are the daemon's,
            # simulated by killing it, not by power loss here).
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
            )

    def start(self) -> None:
        """Start on a free port (the same one again on a restart) and wait until it answers."""
        for _ in range(3):
            self.port = self.port or _free_port()
            log = str(self.root / "log")
            # -W: we wait ourselves, on pg_isready; -o: the port for this start only.
            start = ("-D", str(self.data), "-l", log, "-W", "-o", f"-p {self.port}", "start")
            subprocess.run(
                self._argv("pg_ctl", *start),
                check=True,
                capture_output=True,
                cwd=self.root,
            )
            if self._wait_ready():
                return
            self.port = 0  # taken between our probe and the server's bind: another one
        log = (self.root / "log").read_text(errors="replace")[-2000:]
        pytest.fail(f"PostgreSQL did not start:\n{log}")

    def _wait_ready(self) -> bool:
        """Poll pg_isready (0: accepting; 1: starting; 2: no answer) until the server accepts
        or its postmaster is gone (the port was taken after all)."""

        def outcome() -> str | None:
            probe = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
            if subprocess.run(probe, check=False).returncode == 0:
                return "ready"
            return "dead" if self._postmaster_alive() is False else None

        if _wait_until(outcome, 30, "PostgreSQL to accept connections") == "dead":
            return False
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        STARTED.add(self.pid)
        return True

    def _postmaster_alive(self) -> bool | None:
        """None while the pid file is not there yet."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None
        return alive(pid)

    def stop(self) -> None:
        """Stop by pid: pg_ctl stop -m immediate, then the postmaster and its children gone."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        tree = [pid, *_children(pid)]
        subprocess.run(
            self._argv("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
            cwd=self.root,
        )
        try:
            _wait_until(lambda: not any(alive(p) for p in tree), 20, "PostgreSQL to stop")
        except AssertionError:
            for p in tree:
                if alive(p):
                    os.kill(p, signal.SIGKILL)
            raise

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        try:
            self.stop()
        finally:  # a stop that had to SIGKILL still leaves no folder behind
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A new database owned by the app role: one per test, so tests never share rows."""
        name = f"t{next(self._dbs)}"
        with psycopg.connect(self.url(), password=self.password, autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
            ).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(APP_ROLE), sql.Literal(self.password)
                    )
                )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(APP_ROLE)
                )
            )
        return name


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgServer]:
    """A started server in a fresh folder under the system temporary folder (the pytest one is
    root's 0700 and the `postgres` user could not reach it), removed on the way out."""
    root = Path(tempfile.mkdtemp(prefix="hotfolder-pg-"))
    server = PgServer(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One server for the session; tests that restart it use `pg_own_server`."""
    with pg_cluster() as server:
        yield server


@pytest.fixture
def pg_own_server() -> Iterator[PgServer]:
    """A server of this test's own, free to stop and restart."""
    with pg_cluster() as server:
        yield server


@pytest.fixture(autouse=True, scope="session")
def _no_leftover_postgres() -> Iterator[None]:
    """Runs before the session stops: a server process still alive is a teardown bug."""
    yield
    left = leftovers()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"PostgreSQL processes left running (killed now): {left}"
