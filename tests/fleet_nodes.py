"""Several real `hotfolder run` processes on one drop folder and one PostgreSQL journal (issue 13):
a test peer for tests/integration/test_fleet_nodes.py.

A `Fleet` is one folder holding what the nodes share (the drop folder, the ascp simulator's
server root, the archive and failed folders, the password files) and, under `nodes/<name>`,
what each node keeps to itself: its state_dir, its config, its log and its own `ascp` wrapper
with its own simulator state (session counter, starts.jsonl, landed.jsonl), so a session start
is known to come from that node. The wrapper's environment is per node, so one node's link can
be slow (ASCP_SIM_RATE), or slow only for manifest sessions (the one session that carries
`--file-manifest=text`), while the others are fast. A node's sessions of one kind (media or
manifest) can be held at their start: the wrapper, already spawned by the daemon, waits on a
FIFO before the simulator runs (so before its INIT, before any gate opens), until the test
`release`s it; no timing decides where it stops.

`pause` / `resume` SIGSTOP / SIGCONT a node's daemon process only, not its ascp sessions: a
daemon frozen at the worst moment (a long GC, a swapped-out VM) while its sessions go on.

Nodes are stopped by pid: SIGTERM then SIGKILL for the daemon; `kill` models a workstation
dying at once: the daemon and the ascp sessions it spawned (in their own sessions, see
transfer/process) are stopped (SIGSTOP) together, then SIGKILLed, so none of them acts after
the others are gone. Every simulator a node ever started is killed at teardown if still alive
(from the pids its starts.jsonl recorded).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import yaml
from psycopg.rows import dict_row

from tests.fakes import SIMULATOR, wait_until
from tests.pg import PgServer, alive

__all__ = ["Fleet", "Node", "Row", "fleet"]

#: What a row's `state` column holds once nothing more will happen to it by itself.
FINAL_STATES = frozenset({"complete", "failed", "held"})
#: A daemon asked to stop (SIGTERM) gets this long before SIGKILL.
STOP_GRACE_S = 20.0

#: Which of a submission's two sessions a node's wrapper holds at its start (see `Fleet.add`).
SessionKind = Literal["media", "manifest"]


@dataclass(frozen=True, slots=True)
class Row:
    """One submission as the shared journal has it (the columns these tests judge by)."""

    id: str
    manifest: str
    state: str
    owner: str | None
    delivered_by: str | None
    error_code: str | None


@dataclass
class Node:
    name: str
    home: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def sim(self) -> Path:
        """The folder bench.torture's readers (sim_starts, check_sessions) take as `root`."""
        return self.home

    def starts(self) -> list[dict[str, Any]]:
        """Every session this node's ascp started, as it started (killed ones too)."""
        return self._records("starts.jsonl")

    def landed(self) -> list[dict[str, Any]]:
        """Every file this node's ascp renamed into place at the server (skipped ones not)."""
        return self._records("landed.jsonl")

    def ended(self) -> list[dict[str, Any]]:
        """Every session of this node's ascp that ended by itself, with its result."""
        return self._records("sessions.jsonl")

    def _records(self, name: str) -> list[dict[str, Any]]:
        log = self.home / "sim" / name
        lines = log.read_text().splitlines() if log.exists() else []
        return [json.loads(x) for x in lines if x.strip()]

    def log_tail(self, chars: int = 3000) -> str:
        log = self.home / "daemon.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    def events(self, event: str, submission_id: str) -> list[dict[str, Any]]:
        """The daemon's JSON log lines with that event about that submission."""
        log = self.home / "daemon.log"
        found = []
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == event and entry.get("submission_id") == submission_id:
                    found.append(entry)
        return found

    # -- sessions held at their start (Fleet.add's `hold`) -----------------------------------

    @property
    def _gate(self) -> Path:
        return self.home / "hold.fifo"

    def held(self) -> list[int]:
        """Pids of the wrappers that are waiting (or waited) to be released, in spawn order."""
        waiting = self.home / "held"
        return [int(x) for x in waiting.read_text().split()] if waiting.exists() else []

    def release(self) -> None:
        """Let one held session go on. Called once `held()` shows it: the wrapper writes its
        pid just before it opens the FIFO, so a moment of "no reader yet" is waited out."""

        def one_line() -> bool:
            try:
                fd = os.open(self._gate, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as err:
                if err.errno == errno.ENXIO:  # not opened for reading yet
                    return False
                raise
            try:
                os.write(fd, b"go\n")
            finally:
                os.close(fd)
            return True

        wait_until(one_line, 10, f"a held session of node {self.name} to take its release")


def _descendants(pid: int) -> list[int]:
    """Every process whose parent chain leads to `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _stopped(pid: int) -> bool:
    """True once `pid` is in the stopped state (T) after a SIGSTOP."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    return False


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@dataclass
class Fleet:
    root: Path
    pg: PgServer
    url: str
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def server(self) -> Path:
        return self.root / "server"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def setup(self) -> None:
        for folder in ("drop", "server", "archive", "failed", "nodes"):
            (self.root / folder).mkdir(exist_ok=True)
        for name, secret in (("journal.pass", self.pg.password), ("aspera.pass", "pw")):
            path = self.root / name
            path.write_text(secret + "\n")
            path.chmod(0o600)

    # -- nodes ------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        rate: float = 50e6,
        manifest_rate: float | None = None,
        login_s: float = 0.1,
        manifest_login_s: float | None = None,
        hold: SessionKind | None = None,
        lease_seconds: float | None = None,
        workers: int = 2,
    ) -> Node:
        """A node's folder, ascp wrapper and config (not started). `rate` is its link's speed
        in bytes per second; `manifest_rate` and `manifest_login_s`, if given, the speed and
        login time of its manifest sessions. `hold`: sessions of that kind wait, spawned, at
        their start until `Node.release`."""
        home = self.root / "nodes" / name
        home.mkdir()
        if hold is not None:
            os.mkfifo(home / "hold.fifo", 0o600)
        env = {
            "ASCP_SIM_ROOT": str(self.server),
            "ASCP_SIM_STATE": str(home / "sim"),
            "ASCP_SIM_PASSWORD": "pw",
            "ASCP_SIM_RECORD_STARTS": "1",
            "ASCP_SIM_LOGIN_S": str(login_s),
            "ASCP_SIM_RATE": str(rate),
        }
        manifest_env = {}
        if manifest_rate is not None:
            manifest_env["ASCP_SIM_RATE"] = str(manifest_rate)
        if manifest_login_s is not None:
            manifest_env["ASCP_SIM_LOGIN_S"] = str(manifest_login_s)
        wrapper = self._wrapper(home, env, manifest_env, hold)
        journal: dict[str, Any] = {
            "url": self.url,
            "node": name,
            "password_file": str(self.root / "journal.pass"),
        }
        if lease_seconds is not None:
            journal["lease_seconds"] = lease_seconds
        data = {
            "state_dir": str(home / "state"),
            "logging": {"target": "json", "level": "debug"},
            "workers": workers,
            "journal": journal,
            "watches": [
                {
                    "name": "shared",
                    "path": str(self.drop),
                    "target": "aspera",
                    "mode": "poll",
                    "poll_interval": 0.2,
                    "stability_seconds": 0.3,
                    "after_success": "archive",
                    "archive_dir": str(self.archive),
                    "failed_dir": str(self.root / "failed"),
                }
            ],
            "targets": {
                "aspera": {
                    "type": "ascp",
                    "host": "127.0.0.1",
                    "user": "editor",
                    "password_file": str(self.root / "aspera.pass"),
                    "ascp_path": str(wrapper),
                    "destination": "/",
                    "retry": {"tries": 4, "initial_delay": 0.05, "factor": 2, "max_delay": 0.5},
                }
            },
        }
        config = home / "hotfolder.yaml"
        config.write_text(yaml.safe_dump(data))
        node = Node(name, home, config)
        self.nodes[name] = node
        return node

    @staticmethod
    def _wrapper(
        home: Path, env: dict[str, str], manifest_env: dict[str, str], hold: SessionKind | None
    ) -> Path:
        """home/bin/ascp: the simulator with this node's environment; a manifest session (the
        only one asked for a receipt) gets `manifest_env` on top. A session of the `hold` kind
        first appends its pid to home/held and waits for a line on home/hold.fifo."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        overrides = " ".join(f"{k}={shlex.quote(v)}" for k, v in manifest_env.items())
        kind = 'case " $* " in *" --file-manifest=text "*) kind=manifest;; *) kind=media;; esac\n'
        manifest = f'[ "$kind" = manifest ] && export {overrides}\n' if overrides else ""
        wait = (
            f'if [ "$kind" = {hold} ]; then echo $$ >> {shlex.quote(str(home / "held"))}; '
            f"read -r _ < {shlex.quote(str(home / 'hold.fifo'))}; fi\n"
            if hold is not None
            else ""
        )
        wrapper = home / "bin" / "ascp"
        wrapper.parent.mkdir()
        wrapper.write_text(
            f"#!/bin/sh\nexport {exports}\n{kind}{manifest}{wait}"
            f'exec {shlex.quote(sys.executable)} {shlex.quote(str(SIMULATOR))} "$@"\n'
        )
        wrapper.chmod(0o755)
        return wrapper

    def start(self, name: str) -> Node:
        """Start the node's daemon and wait until it is a live node of the journal."""
        node = self.nodes[name]
        with open(node.home / "daemon.log", "ab") as log:
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "hotfolder", "run", "--config", str(node.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def registered() -> bool:
            proc = node.proc
            assert proc is not None
            if proc.poll() is not None:
                raise AssertionError(f"node {name} exited ({proc.returncode}):\n{node.log_tail()}")
            return name in self.live_nodes()

        wait_until(registered, 30, f"node {name} to join the journal")
        return node

    def pause(self, name: str) -> None:
        """SIGSTOP the node's daemon, and only it: its ascp sessions go on."""
        proc = self.nodes[name].proc
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)
        wait_until(lambda: _stopped(proc.pid), 10, f"node {name}'s daemon to stop")

    def resume(self, name: str) -> None:
        proc = self.nodes[name].proc
        assert proc is not None
        proc.send_signal(signal.SIGCONT)

    def kill(self, name: str) -> None:
        """The workstation dies: its daemon and every ascp it spawned stop at once."""
        node = self.nodes[name]
        assert node.proc is not None
        pid = node.proc.pid
        tree = [pid, *_descendants(pid), *self._simulators(node)]
        for p in tree:
            _signal(p, signal.SIGSTOP)
        tree += [p for p in _descendants(pid) if p not in tree]  # spawned meanwhile
        for p in tree:
            _signal(p, signal.SIGKILL)
        node.proc.wait(10)
        wait_until(lambda: not any(alive(p) for p in tree), 10, f"node {name} to be gone")

    def stop_all(self) -> None:
        """SIGTERM every running daemon, SIGKILL what did not stop in time, then kill every
        simulator still alive. By pid, always."""
        running = [n for n in self.nodes.values() if n.proc is not None and n.proc.poll() is None]
        for node in running:
            assert node.proc is not None
            node.proc.send_signal(signal.SIGCONT)  # a paused daemon could not act on SIGTERM
            node.proc.send_signal(signal.SIGTERM)
        for node in running:
            assert node.proc is not None
            try:
                node.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(10)
        for node in self.nodes.values():
            for pid in self.sessions_alive(node.name):
                _signal(pid, signal.SIGKILL)

    def sessions_alive(self, name: str) -> list[int]:
        """Pids of the node's ascp sessions still running (held ones included)."""
        node = self.nodes[name]
        return [*self._simulators(node), *self._held_wrappers(node)]

    @staticmethod
    def _simulators(node: Node) -> list[int]:
        """The node's simulators still alive (their pids from its starts.jsonl, checked to be
        the simulator still, so a reused pid is never hit)."""
        found = []
        for start in node.starts():
            pid = int(start["pid"])
            with contextlib.suppress(OSError):
                if (
                    alive(pid)
                    and str(SIMULATOR).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
                ):
                    found.append(pid)
        return found

    @staticmethod
    def _held_wrappers(node: Node) -> list[int]:
        """The node's wrappers still waiting to be released (checked to be its wrapper)."""
        wrapper = str(node.home / "bin" / "ascp").encode()
        found = []
        for pid in node.held():
            with contextlib.suppress(OSError):
                if alive(pid) and wrapper in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
        return found

    # -- the shared journal, read directly ---------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.url, password=self.pg.password, row_factory=dict_row) as conn:
            return conn.execute(sql, args).fetchall()

    def live_nodes(self) -> set[str]:
        try:
            raws = self._query("SELECT name FROM nodes")
        except psycopg.errors.UndefinedTable:  # no node has created the schema yet
            return set()
        return {r["name"] for r in raws}

    def rows(self) -> dict[str, Row]:
        """Rows by manifest path (relative to the drop folder)."""
        try:
            raws = self._query(
                "SELECT id, manifest, state, owner, delivered_by, error_code FROM submissions"
            )
        except psycopg.errors.UndefinedTable:
            return {}
        return {
            r["manifest"]: Row(
                r["id"], r["manifest"], r["state"], r["owner"], r["delivered_by"], r["error_code"]
            )
            for r in raws
        }

    def evidence(self, sid: str) -> list[tuple[str, str]]:
        """(kind, node) of each piece of evidence kept for `sid`."""
        raws = self._query(
            "SELECT kind, node FROM evidence WHERE submission_id = %s ORDER BY at", (sid,)
        )
        return [(r["kind"], r["node"]) for r in raws]

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        """(state, note, node) of each history line of `sid`, oldest first."""
        raws = self._query(
            "SELECT state, note, node FROM history WHERE submission_id = %s ORDER BY seq", (sid,)
        )
        return [(r["state"], r["note"], r["node"]) for r in raws]

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        """wait_until, with every node's log in the message when it times out."""
        try:
            wait_until(condition, timeout, what)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{self.logs()}") from None

    def all_final(self, manifests: set[str]) -> bool:
        rows = self.rows()
        return all(m in rows and rows[m].state in FINAL_STATES for m in manifests)

    def logs(self) -> str:
        """Every node's log tail, for a failure message."""
        return "\n".join(f"--- {n.name}\n{n.log_tail()}" for n in self.nodes.values())


@contextlib.contextmanager
def fleet(root: Path, pg: PgServer) -> Iterator[Fleet]:
    """A fleet with its own database on `pg`; every node process is gone on the way out."""
    url = pg.app_url(pg.create_database())
    rig = Fleet(root, pg, url)
    rig.setup()
    try:
        yield rig
    finally:
        rig.stop_all()
