"""The running daemon's control channel: how `hotfolder rate` reaches it (issue 14).

A UNIX stream socket at <state_dir>/control/hotfolder.sock: the folder is 0700 and the socket
0600, so only the daemon's own user (and root) can connect. One JSON request line in, one JSON
reply line out. The kernel tells us who connected (SO_PEERCRED: pid, uid, gid), and the audit
login uid (/proc/<pid>/loginuid) says who logged in even behind sudo: that is what the log
names, never what the client claims.

Why a socket rather than a row in the journal: a rate is not a submission's state and must not
outlive the daemon; the operator gets an answer at once (the target exists, the rate reads,
how many sessions follow it) instead of a write nobody may ever read; and the kernel, not the
client, says who made the change.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hotfolder import units
from hotfolder.transfer.link import Link
from hotfolder.transfer.schedule import zone_name

if TYPE_CHECKING:
    from hotfolder.service.in_force import InForce

log = structlog.get_logger()

SOCKET = Path("control") / "hotfolder.sock"
MAX_REQUEST = 64 * 1024
TIMEOUT = 5.0
NO_LOGIN_UID = 4294967295  # (uid_t)-1: a process no login session started


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is at the other end, as the kernel says."""

    pid: int
    uid: int
    gid: int
    login_uid: int | None = None

    def describe(self) -> str:
        """'alice (uid 1000, pid 4242)', or 'root (uid 0, pid 42, logged in as alice)'."""
        who = f"{_user(self.uid)} (uid {self.uid}, pid {self.pid}"
        if self.login_uid is not None and self.login_uid != self.uid:
            who += f", logged in as {_user(self.login_uid)}"
        return who + ")"

    @classmethod
    def of(cls, conn: socket.socket) -> Peer:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return cls(pid, uid, gid, _login_uid(pid))


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    message: str

    def encode(self) -> bytes:
        return json.dumps({"ok": self.ok, "message": self.message}).encode() + b"\n"


Handler = Callable[[Mapping[str, Any], Peer], Reply]


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _login_uid(pid: int) -> int | None:
    try:
        value = int(Path(f"/proc/{pid}/loginuid").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if value == NO_LOGIN_UID else value


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET


class ControlServer:
    """Accepts one request at a time on its own thread; each answer takes milliseconds."""

    def __init__(self, state_dir: Path, handle: Handler) -> None:
        self.path = socket_path(state_dir)
        self.handle = handle
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask, and may exist
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o600)  # no one else can reach it in between: the folder is 0700
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _remove_stale(self) -> None:
        """A socket file left by a daemon that died: nobody answers on it."""
        if not self.path.exists():
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()
                return
        raise OSError(f"another hotfolder daemon answers on {self.path}")

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(TIMEOUT)
        try:
            peer = Peer.of(conn)
            if peer.uid not in (0, os.getuid()):  # the mode says so too; twice is cheap
                reply = Reply(False, "only the daemon's user or root may change it")
            else:
                reply = self._dispatch(_read_line(conn), peer)
            conn.sendall(reply.encode())
        except (OSError, ValueError) as err:
            log.warning("control request dropped", error=str(err))

    def _dispatch(self, raw: bytes, peer: Peer) -> Reply:
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            return Reply(False, "not a JSON request")
        if not isinstance(request, dict):
            return Reply(False, "not a JSON object")
        try:
            return self.handle(request, peer)
        except Exception as err:  # one bad request must not stop the channel
            log.exception("control request failed", peer=peer.describe())
            return Reply(False, f"the daemon could not do it: {err}")


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too long")
    return data.split(b"\n", 1)[0]


def request(state_dir: Path, payload: Mapping[str, Any], timeout: float = TIMEOUT) -> Reply:
    """Send one request to the running daemon (the CLI's side). Raises OSError when no
    daemon listens (or this user may not reach it)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path(state_dir)))
        sock.sendall(json.dumps(dict(payload)).encode() + b"\n")
        raw = _read_line(sock)
    answer = json.loads(raw) if raw else {}
    return Reply(bool(answer.get("ok")), str(answer.get("message", "no answer")))


# -- the commands --------------------------------------------------------------------------


def link_commands(links: Mapping[str, Link], all_targets: Mapping[str, str]) -> Handler:
    """The handler for `rate` requests against `links` (targets that have one); other
    targets (`all_targets`: name -> type) are named in the refusal."""

    def handle(request: Mapping[str, Any], peer: Peer) -> Reply:
        if request.get("command") != "rate":
            return Reply(False, f"unknown command {request.get('command')!r}")
        name = str(request.get("target", ""))
        link = links.get(name)
        if link is None:
            if name in all_targets:
                return Reply(
                    False, f"target '{name}' is a {all_targets[name]} target: it has no rate"
                )
            known = ", ".join(sorted(all_targets)) or "none"
            return Reply(False, f"no target named '{name}' (known: {known})")
        who = peer.describe()
        if request.get("clear"):
            link.clear_rate(who)
            return Reply(True, f"target '{name}': back to {_in_force(link)}")
        try:
            seconds = units.seconds(request["for"]) if request.get("for") else None
            override = link.set_rate(str(request.get("rate", "")), who, seconds)
        except units.UnitError as err:
            return Reply(False, str(err))
        until = ""
        if override.until is not None:
            local = override.until.astimezone(link.settings.schedule.zone)
            until = f" until {local:%Y-%m-%d %H:%M} {zone_name(link.settings.schedule.zone)}"
        running = link.sessions
        if running == 1:
            follows = "1 running session follows it within a second"
        elif running:
            follows = f"{running} running sessions follow it within a second"
        else:
            follows = "no session is running; the next ones start at it"
        return Reply(True, f"target '{name}': {override.rate} set by {who}{until}; {follows}")

    return handle


def _in_force(link: Link) -> str:
    now = link.now()
    return f"{now.rate or 'the server default'} ({now.source})"


class Control:
    """The daemon's side: a ControlServer answering `rate` against the links in force at
    each request (a reload keeps a target's Link, and adds or drops targets). A socket that
    cannot be opened (a path too long for AF_UNIX, another daemon on it) is said once and
    the daemon goes on without the channel: transfers matter more than live rates."""

    def __init__(self, state_dir: Path, current: Callable[[], InForce]) -> None:
        def handle(request: Mapping[str, Any], peer: Peer) -> Reply:
            in_force = current()
            types = {name: t.type for name, t in in_force.config.targets.items()}
            return link_commands(in_force.links, types)(request, peer)

        self.server = ControlServer(state_dir, handle)
        self.started = False

    def start(self) -> None:
        try:
            self.server.start()
        except OSError as err:
            log.error(  # noqa: TRY400 - the reason says it all
                "control channel not opened: `hotfolder rate` cannot reach this daemon",
                path=str(self.server.path),
                error=str(err),
            )
            return
        self.started = True
        log.info("control channel open", path=str(self.server.path))

    def stop(self) -> None:
        if self.started:
            self.server.stop()
            self.started = False
