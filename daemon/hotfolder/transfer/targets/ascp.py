"""The `ascp` target: IBM Aspera's real client, driven exactly as documented (ingest-facts §1).

One session = one ascp process. The daemon listens on 127.0.0.1 *before* spawning ascp with
`-M <port>`, reads FASPMGR 2 frames for progress and the verdict, and treats the last frame
(DONE or ERROR) together with the exit status as the result. Files go in a `--file-pair-list`
written in the state dir (never in a watch folder), the destination as `--dest64`, the
password in ASPERA_SCP_PASS: nothing secret is ever on the command line.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import select
import shutil
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import structlog

from hotfolder.clock import Clock, SystemClock
from hotfolder.config import sections
from hotfolder.config.sections import AscpTargetSettings
from hotfolder.credentials import CredentialError, read_secret
from hotfolder.durable import durable_write
from hotfolder.transfer import faspmgr
from hotfolder.transfer.link import Link
from hotfolder.transfer.process import Child, masked
from hotfolder.transfer.targets.base import (
    Fault,
    Progress,
    Session,
    TransferError,
)
from hotfolder.transfer.targets.steering import Steering

RECEIPT_GLOB = "aspera-transfer-*-manifest.txt"
INPROGRESS_SUFFIX = ".aspera-inprogress"
#: Environment variables of ours that must not leak into ascp (it reads several ASPERA_*).
DROPPED_ENV = (
    "ASPERA_SCP_PASS",
    "ASPERA_SCP_TOKEN",
    "ASPERA_SCP_KEY",
    "ASPERA_SCP_FILEPASS",
    "ASPERA_SCP_COOKIE",
    "ASPERA_PROXY_PASS",
)
POLL = 0.2


@dataclass(frozen=True, slots=True)
class AscpSettings(AscpTargetSettings):
    """The target's typed config (defaults from the schema), plus where a run keeps its file
    lists and receipts: under state_dir, never in a watch folder."""

    name: str = field(kw_only=True)
    work_dir: Path = field(kw_only=True)

    @classmethod
    def of(cls, name: str, target: AscpTargetSettings, work_dir: Path) -> AscpSettings:
        given = {f.name: getattr(target, f.name) for f in fields(AscpTargetSettings)}
        return cls(**given, name=name, work_dir=work_dir)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any], work_dir: Path) -> AscpSettings:
        """From a target's raw keys (TargetConfig.options): prefer `of` with its `settings`."""
        typed = sections.target({**options, "type": "ascp"}, Path)
        if not isinstance(typed, AscpTargetSettings):  # an "ascp" block gives ascp settings
            raise TypeError(f"not ascp settings: {typed!r}")
        return cls.of(name, typed, work_dir)


# -- pure: argv and environment -----------------------------------------------------------


def build_argv(
    s: AscpSettings,
    session: Session,
    mgmt_port: int,
    pair_list: Path,
    receipt_dir: Path | None = None,
) -> tuple[str, ...]:
    """The whole command line, as data. Nothing in it is secret."""
    argv: list[str] = [
        s.ascp_path,
        "-q",
        "--mode=send",
        f"--host={s.host}",
        f"--user={s.user}",
        "-P",
        str(s.ssh_port),
        "-O",
        str(s.udp_port),
    ]
    if s.target_rate:
        argv += ["-l", s.target_rate]
    if s.min_rate:
        argv += ["-m", s.min_rate]
    argv += [f"--policy={s.policy}", "-k", str(s.resume), "--overwrite=diff", "-d"]
    if s.cipher:
        argv += ["-c", s.cipher]
    if s.key_file:
        argv += ["-i", str(s.key_file)]
    if s.sshfp:
        argv += [f"--check-sshfp={s.sshfp}"]
    if receipt_dir is not None:
        # A per-session receipt of delivered files: crash-recovery evidence (ingest-facts §1.7)
        argv += ["--file-manifest=text", f"--file-manifest-path={receipt_dir}"]
    tags = {"hotfolder": {"submission": session.submission_id, "session": session.label}}
    argv += [
        f"--tags={json.dumps(tags, separators=(',', ':'))}",
        f"--file-pair-list={pair_list}",
        "-M",
        str(mgmt_port),
        "--dest64",
        base64.b64encode(s.destination.encode()).decode(),
    ]
    return tuple(argv)


def build_env(base: Mapping[str, str], password: str | None) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in DROPPED_ENV}
    env["ASPERA_TEST_REDIS_DISABLE"] = "true"  # as aspera-cli does
    if password is not None:
        env["ASPERA_SCP_PASS"] = password
    return env


def pair_list_text(session: Session) -> str:
    """Alternating source and destination lines (UTF-8), one pair per file."""
    lines = []
    for src, dest in session.files:
        for value in (str(src), str(dest)):
            if "\n" in value or "\r" in value:
                raise TransferError(
                    f"file name with a line break: {value!r}",
                    "bad-name",
                    Fault.EDITOR,
                    may_have_arrived=False,
                )
            lines.append(value)
    return "\n".join(lines) + "\n"


def fault_of(code: int, description: str = "") -> Fault:
    """Who can fix a FASP error: the admin (credentials, licence, configuration), nobody
    (retry: the network, a busy server), else the editor (a file, a name)."""
    if code in faspmgr.ADMIN_CODES:
        return Fault.ADMIN
    if faspmgr.is_retryable(code, description):
        return Fault.TRANSIENT
    return Fault.EDITOR


def classify(
    last: faspmgr.Frame | None, exit_code: int | None, output: list[str], connected: bool
) -> TransferError | None:
    """The session's verdict: None if it succeeded, else the error to report or retry. Whether
    anything arrived is decided by the caller, who knows what ascp could have read."""
    tail = " | ".join(line for line in output[-5:] if line)
    if last is not None and last.type == "DONE" and exit_code == 0:
        return None
    if last is not None and last.type == "ERROR":
        code = last.int("Code", 2)
        description = last.get("Description") or tail or "ascp failed"
        name = faspmgr.CODE_NAMES.get(code, "error")
        return TransferError(
            f"{description} (FASP error {code}: {name})",
            f"fasp-{code}",
            fault_of(code, description),
        )
    if not connected:
        if any(w in tail.lower() for w in ("unrecognized option", "bad argument", "usage")):
            # Our argv comes from the config and the installed ascp: the admin's to fix.
            return TransferError(f"ascp refused its arguments: {tail}", "fasp-8", Fault.ADMIN)
        return TransferError(
            f"ascp exited (status {exit_code}) before opening its "
            f"management connection: {tail or 'no output'}",
            "no-mgmt",
        )
    if last is not None and last.type == "INIT":
        return TransferError(
            f"ascp stopped right after starting, usually an SSH handshake "
            f"failure: {tail or 'no output'}",
            "early-exit",
        )
    if last is not None and last.type == "DONE":
        return TransferError(f"ascp reported DONE but exited with status {exit_code}", "bad-exit")
    return TransferError(
        f"ascp ended without a verdict (status {exit_code}): {tail or 'no output'}",
        "no-verdict",
    )


# -- the target ----------------------------------------------------------------------------


class AscpTarget:
    def __init__(
        self, settings: AscpSettings, link: Link | None = None, clock: Clock | None = None
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.link = link  # windows and live rates (issue 14); None: -l target_rate, fixed
        self.clock = clock or SystemClock()  # the connect and stall deadlines are read on it

    def check(self) -> TransferError | None:
        """The executable runs and the credential can be read (a login itself cannot be
        tried without a session)."""
        path = self.settings.ascp_path
        found = shutil.which(path)
        if found is None:
            return _no_ascp(path, "not found" if "/" in path else "not found on PATH")
        try:
            self._password()
        except TransferError as err:
            return err
        return None

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        s = self.settings
        gate = _Gate(self, session) if session.label == "manifest" else None
        pair_list = s.work_dir / f"{session.submission_id}.{session.label}.list"
        try:
            try:
                s.work_dir.mkdir(parents=True, exist_ok=True)
                if gate is not None:
                    gate.prepare()
                listed = gate.listed(session) if gate is not None else session
                pair_list.write_text(pair_list_text(listed), encoding="utf-8")
            except OSError as err:
                raise _state_dir_error(err) from err
            password = self._password()
            receipts = self.receipt_dir(session) if gate is not None else None
            steering = Steering(self.link, session) if self.link is not None else None
            run = _Run(s, session, pair_list, receipts, password, progress, cancel, gate, steering)
            run.clock = self.clock  # the deadlines: a test's FakeClock, else the system's
            run.run()
        finally:
            pair_list.unlink(missing_ok=True)
            if gate is not None:
                gate.clear()

    def delivered(self, session: Session) -> bool | None:
        """A finished ascp receipt naming every file of the session proves delivery; no
        attempt marker proves ascp could never read the manifest (see _Gate)."""
        folder = self.receipt_dir(session)
        if not self.attempt_marker(session).exists():
            return False
        names = {str(dest) for _, dest in session.files}
        for receipt in folder.glob(RECEIPT_GLOB) if folder.is_dir() else ():
            text = receipt.read_text(encoding="utf-8", errors="replace")
            if all(
                any(line.rstrip().endswith(name) for line in text.splitlines()) for name in names
            ):
                return True
        return None

    def attempt_marker(self, session: Session) -> Path:
        return self.receipt_dir(session) / f"{session.label}.attempt"

    def receipt_dir(self, session: Session) -> Path:
        return self.settings.work_dir / "receipts" / session.submission_id

    def _password(self) -> str | None:
        try:
            return read_secret(self.settings.password_file, self.settings.password_credential)
        except CredentialError as err:
            raise TransferError(
                str(err), "no-credential", Fault.ADMIN, may_have_arrived=False
            ) from err


def _no_ascp(path: str, why: str) -> TransferError:
    return TransferError(
        f"cannot run ascp ({path!r}): {why}; install IBM Aspera's ascp or set the "
        "target's ascp_path",
        "no-ascp",
        Fault.ADMIN,
        may_have_arrived=False,
    )


def _state_dir_error(err: OSError) -> TransferError:
    full = err.errno in (errno.ENOSPC, errno.EDQUOT)
    return TransferError(
        f"cannot prepare the session in the state folder: {err.strerror or err} ({err.filename})",
        "state-dir",
        Fault.TRANSIENT if full else Fault.ADMIN,
        may_have_arrived=False,
    )


class _Gate:
    """The manifest reaches ascp only through this gate, so that the attempt marker is
    durable before any byte of the manifest can leave (issue 16, item 17).

    ascp is given a staged copy of the manifest in the state dir, under a name that does not
    exist yet. It starts (INIT, SESSION, then SSH and the login: the real ascp 3.9 does not
    look at its sources before the login, see test_ascp_real) while the copy waits under a
    hidden name. When the daemon reads INIT, and ascp is still running, it writes the marker
    durably and only then renames the copy into place. So:

    - a daemon killed (or paused) before the rename cannot have let the manifest leave: the
      file ascp was told to send did not exist, and PR_SET_PDEATHSIG kills ascp with us. A
      restart finds no marker and sends again without a hold;
    - a daemon paused until after ascp gave up finds the child gone, leaves the gate shut,
      and knows for certain that nothing left: the session is tried again, never held;
    - only a session that ran with the gate open can have delivered the manifest, and only
      that one is decided by evidence (receipt) or held.

    The marker could not be written any later without a race: ascp does not wait for us, and
    a paused daemon lags ascp by any amount. Writing it at INIT, not before the spawn, is what
    keeps a kill in the seconds of start-up from turning into a needless hold.
    """

    HIDDEN = ".closed"

    def __init__(self, target: AscpTarget, session: Session) -> None:
        ((self.source, self.dest),) = session.files
        folder = target.settings.work_dir / "outbox"
        self.staged = folder / f"{session.submission_id}.manifest"
        self.hidden = self.staged.with_name(self.staged.name + self.HIDDEN)
        self.marker = target.attempt_marker(session)
        self.opened = False

    def prepare(self) -> None:
        """Copy the manifest as it is now (it was checked unchanged just before)."""
        self.staged.parent.mkdir(parents=True, exist_ok=True)
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.staged.unlink(missing_ok=True)  # a previous try's, if a crash left it
        shutil.copyfile(self.source, self.hidden)

    def open(self, child: Child) -> bool:
        """Let ascp read the manifest, if it still runs; the marker first, durably."""
        if self.opened or child.poll() is not None:
            return self.opened
        try:
            durable_write(self.marker, "")
            os.rename(self.hidden, self.staged)
        except OSError as err:
            raise _state_dir_error(err) from err  # shut: nothing could leave
        self.opened = True
        return True

    def listed(self, session: Session) -> Session:
        """The session as ascp is told it: the staged copy as the source."""
        return Session(session.submission_id, session.label, ((self.staged, self.dest),))

    def clear(self) -> None:
        self.staged.unlink(missing_ok=True)
        self.hidden.unlink(missing_ok=True)


class _Run:
    """One ascp session: listen, spawn, accept, read frames, watch for stalls, reap."""

    def __init__(
        self,
        s: AscpSettings,
        session: Session,
        pair_list: Path,
        receipts: Path | None,
        password: str | None,
        progress: Progress,
        cancel: threading.Event,
        gate: _Gate | None = None,
        steering: Steering | None = None,
    ) -> None:
        self.s = s
        self.steering = steering
        self.session = session
        self.pair_list = pair_list
        self.receipts = receipts
        self.password = password
        self.progress = progress
        self.cancel = cancel
        self.gate = gate
        self.clock: Clock = SystemClock()  # AscpTarget hands its own in
        self.child: Child | None = None
        self.log = structlog.get_logger().bind(
            submission_id=session.submission_id, session=session.label, target=s.name
        )
        self.last: faspmgr.Frame | None = None
        self.data_phase = False  # a frame showed files counted or bytes moving
        self.file_errors: list[str] = []
        self.unopened: set[str] = set()  # sources ascp said it could not find or stat
        self.arrived: set[str] = set()  # destination paths whose STOP frame came in

    def run(self) -> None:
        if self.steering is None:
            self._run(self.s)
            return
        try:
            self._run(replace(self.s, target_rate=self.steering.start(self.s.target_rate)))
        finally:
            self.steering.stop()

    def _run(self, settings: AscpSettings) -> None:
        with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
            port = listener.getsockname()[1]
            argv = build_argv(settings, self.session, port, self.pair_list, self.receipts)
            self.log.info("ascp starting", command=masked(argv))
            try:
                child = self.child = Child(argv, build_env(os.environ, self.password))
            except OSError as err:  # not there, not executable: nothing ran
                raise _no_ascp(self.s.ascp_path, err.strerror or str(err)) from err
            try:
                error = self._supervise(listener, child)
            finally:
                exit_code = child.stop()
        verdict = error or classify(self.last, exit_code, child.output(), connected=True)
        if verdict is None and self.gate is not None and not self.gate.opened:
            verdict = TransferError(  # it never could read the manifest: not a success
                "ascp reported success before it could read the manifest", "gate-shut"
            )
        if verdict is not None and verdict.code != "cancelled" and self._all_arrived():
            # Every file's STOP came in before the failure: it arrived. Retrying would send
            # the manifest twice, which an ingest server takes as a second asset.
            self.log.warning(
                "session failed after every file arrived; counted as sent",
                code=verdict.code,
                error=verdict.message,
            )
            return
        if verdict is None:
            return
        if self.file_errors:
            verdict.message += "; files: " + "; ".join(self.file_errors[:5])
        verdict.may_have_arrived = self._may_have_arrived(verdict)
        if self._gate_was_shut() and verdict.fault is Fault.EDITOR:
            # ascp looked for the staged copy before the gate opened (a paused or slow
            # daemon): the editor's files are fine and nothing left; try again.
            verdict.fault = Fault.TRANSIENT
        raise verdict

    def _gate_was_shut(self) -> bool:
        return self.gate is not None and (
            not self.gate.opened or str(self.gate.staged) in self.unopened
        )

    def _may_have_arrived(self, verdict: TransferError) -> bool:
        """Could a file of this session be complete at the destination? Answered from what
        ascp could have read and what it said before any data could move; never from its
        word about data already moving."""
        if self.gate is not None and not self.gate.opened:
            return False  # the manifest did not exist under the name ascp was given
        if self.gate is not None and str(self.gate.staged) in self.unopened:
            # ascp looked for the staged copy before the rename (the daemon slower than
            # ascp's login): it could not open it, so it sent none of it.
            return False
        if self.last is None:
            return False  # it never spoke to us, and ascp exits when it cannot (1.8)
        if self.data_phase:
            return True
        code = self.last.int("Code", 0) if self.last.type == "ERROR" else 0
        return code not in faspmgr.PRE_TRANSFER_CODES and verdict.code != "fasp-8"

    def _supervise(self, listener: socket.socket, child: Child) -> TransferError | None:
        conn = self._accept(listener, child)
        if conn is None:
            code = child.wait(5)
            return classify(None, code, child.output(), connected=False) or TransferError(
                "ascp never opened its management connection", "no-mgmt"
            )
        with conn:
            return self._read_frames(conn, child)

    def _accept(self, listener: socket.socket, child: Child) -> socket.socket | None:
        """The management connection, if ascp made one. A connection waiting on the listener
        is taken even when ascp has already exited: a daemon paused for a few seconds finds
        a finished session there, with its whole verdict queued (issue 16, item 3)."""
        deadline = self.clock.monotonic() + self.s.connect_timeout
        while True:
            ready, _, _ = select.select([listener], [], [], POLL)
            if ready:
                conn, _ = listener.accept()
                return conn
            if self.cancel.is_set():
                return None
            if child.poll() is not None:
                # Gone: any connect() it made completed before it exited, so one last look
                # sees it for certain.
                ready, _, _ = select.select([listener], [], [], 0)
                return listener.accept()[0] if ready else None
            if self.clock.monotonic() >= deadline:
                self.log.warning(
                    "ascp did not connect to the management port", timeout=self.s.connect_timeout
                )
                return None

    def _read_frames(self, conn: socket.socket, child: Child) -> TransferError | None:
        parser = faspmgr.FrameParser()
        conn.settimeout(POLL)
        last_progress = self.clock.monotonic()
        best = 0
        while True:
            if self.cancel.is_set():
                self._send_cancel(conn)
                return TransferError("cancelled by shutdown", "cancelled")
            if self.steering is not None and (paused := self.steering.step(_sender(conn))):
                return paused
            if self.clock.monotonic() - last_progress > self.s.stall_timeout:
                self._send_cancel(conn)
                return TransferError(
                    f"no progress for {self.s.stall_timeout:.0f} s: stalled",
                    "stalled",
                )
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not data:
                return None  # EOF: the verdict is the last frame plus the exit status
            for frame in parser.feed(data):
                done = self._on_frame(frame)
                if done > best:
                    best, last_progress = done, self.clock.monotonic()

    def _on_frame(self, frame: faspmgr.Frame) -> int:
        """Record the frame; return bytes done so far (0 if the frame says nothing of it)."""
        if frame.type in (
            "INIT",
            "SESSION",
            "STATS",
            "STOP",
            "FILEERROR",
            "ARGSTOP",
            "DONE",
            "ERROR",
            "NOTIFICATION",
        ):
            self.last = frame if frame.type not in ("STATS", "NOTIFICATION") else self.last
        if frame.type in faspmgr.DATA_PHASE:
            self.data_phase = True
        if frame.type == "INIT" and self.gate is not None and self.child is not None:
            self.gate.open(self.child)
        if frame.type == "STATS":
            done = frame.int("TransferBytes") + frame.int("StartByte")
            self.progress(done)
            return done
        if frame.type == "FILEERROR":
            self.file_errors.append(f"{frame.get('File')}: {frame.get('Description')}")
            if frame.int("Code") in faspmgr.SOURCE_NOT_FOUND:
                self.unopened.add(frame.get("File"))
            self.log.warning(
                "file failed",
                file=frame.get("File"),
                code=frame.get("Code"),
                error=frame.get("Description"),
            )
        elif frame.type == "STOP":
            self.arrived.add(frame.get("File"))
            self.log.debug("file sent", file=frame.get("File"), bytes=frame.get("Size"))
        elif frame.type == "DONE":
            self.log.info(
                "ascp session done",
                files=frame.get("TransfersPassed"),
                skipped=frame.get("TransfersSkipped"),
            )
        elif frame.type == "ERROR":
            self.log.warning(
                "ascp session error", code=frame.get("Code"), error=frame.get("Description")
            )
        return 0

    def _all_arrived(self) -> bool:
        return bool(self.session.files) and all(
            any(path.endswith(str(dest)) for path in self.arrived) for _, dest in self.session.files
        )

    def _send_cancel(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # ascp may be gone already; signals follow
            conn.sendall(faspmgr.encode({"Type": "CANCEL"}))


def _sender(conn: socket.socket) -> Callable[[bytes], None]:
    """Write a command to ascp; one that has just exited is not an error (its EOF follows)."""

    def send(data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)

    return send
