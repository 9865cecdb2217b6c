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
import json
import os
import select
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from hotfolder import faspmgr
from hotfolder.credentials import CredentialError, read_secret
from hotfolder.process import Child, masked
from hotfolder.targets.base import Progress, Session, TransferError, durable_write

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
class AscpSettings:
    name: str
    host: str
    user: str
    work_dir: Path  # file lists and receipts: under state_dir, never in a watch folder
    ssh_port: int = 33001
    udp_port: int = 33001
    destination: str = "/"
    password_file: Path | None = None
    password_credential: str | None = None
    key_file: Path | None = None
    sshfp: str | None = None
    target_rate: str | None = None
    min_rate: str | None = None
    policy: str = "fair"
    cipher: str | None = None
    resume: int = 2
    ascp_path: str = "ascp"
    stall_timeout: float = 120.0
    connect_timeout: float = 15.0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any], work_dir: Path) -> AscpSettings:
        known = {
            k: v
            for k, v in options.items()
            if k in cls.__dataclass_fields__ and k not in ("name", "work_dir")
        }
        for key in ("password_file", "key_file"):
            if known.get(key) is not None:
                known[key] = Path(known[key])
        return cls(name=name, work_dir=work_dir, **known)


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
                    f"file name with a line break: {value!r}", "bad-name", retryable=False
                )
            lines.append(value)
    return "\n".join(lines) + "\n"


def classify(
    last: faspmgr.Frame | None, exit_code: int | None, output: list[str], connected: bool
) -> TransferError | None:
    """The session's verdict: None if it succeeded, else the error to report or retry."""
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
            retryable=faspmgr.is_retryable(code, description),
        )
    if not connected:
        if any(w in tail.lower() for w in ("unrecognized option", "bad argument", "usage")):
            return TransferError(f"ascp refused its arguments: {tail}", "fasp-8", retryable=False)
        return TransferError(
            f"ascp exited (status {exit_code}) before opening its "
            f"management connection: {tail or 'no output'}",
            "no-mgmt",
            retryable=True,
        )
    if last is not None and last.type == "INIT":
        return TransferError(
            f"ascp stopped right after starting, usually an SSH handshake "
            f"failure: {tail or 'no output'}",
            "early-exit",
            retryable=True,
        )
    if last is not None and last.type == "DONE":
        return TransferError(
            f"ascp reported DONE but exited with status {exit_code}", "bad-exit", retryable=True
        )
    return TransferError(
        f"ascp ended without a verdict (status {exit_code}): {tail or 'no output'}",
        "no-verdict",
        retryable=True,
    )


# -- the target ----------------------------------------------------------------------------


class AscpTarget:
    def __init__(self, settings: AscpSettings) -> None:
        self.name = settings.name
        self.settings = settings

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        s = self.settings
        s.work_dir.mkdir(parents=True, exist_ok=True)
        pair_list = s.work_dir / f"{session.submission_id}.{session.label}.list"
        pair_list.write_text(pair_list_text(session), encoding="utf-8")
        receipts = self.receipt_dir(session) if session.label == "manifest" else None
        if receipts is not None:
            receipts.mkdir(parents=True, exist_ok=True)
            durable_write(self._attempt(session), "")  # from here on, it may have left
        try:
            _Run(s, session, pair_list, receipts, self._password(), progress, cancel).run()
        finally:
            pair_list.unlink(missing_ok=True)

    def delivered(self, session: Session) -> bool | None:
        """A finished ascp receipt naming every file of the session proves delivery; no
        attempt marker proves ascp never ran for it."""
        folder = self.receipt_dir(session)
        if not self._attempt(session).exists():
            return False
        names = {str(dest) for _, dest in session.files}
        for receipt in folder.glob(RECEIPT_GLOB) if folder.is_dir() else ():
            text = receipt.read_text(encoding="utf-8", errors="replace")
            if all(
                any(line.rstrip().endswith(name) for line in text.splitlines()) for name in names
            ):
                return True
        return None

    def _attempt(self, session: Session) -> Path:
        return self.receipt_dir(session) / f"{session.label}.attempt"

    def receipt_dir(self, session: Session) -> Path:
        return self.settings.work_dir / "receipts" / session.submission_id

    def _password(self) -> str | None:
        try:
            return read_secret(self.settings.password_file, self.settings.password_credential)
        except CredentialError as err:
            raise TransferError(str(err), "no-credential", retryable=False) from err


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
    ) -> None:
        self.s = s
        self.session = session
        self.pair_list = pair_list
        self.receipts = receipts
        self.password = password
        self.progress = progress
        self.cancel = cancel
        self.log = structlog.get_logger().bind(
            submission_id=session.submission_id, session=session.label, target=s.name
        )
        self.last: faspmgr.Frame | None = None
        self.file_errors: list[str] = []
        self.arrived: set[str] = set()  # destination paths whose STOP frame came in

    def run(self) -> None:
        with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
            port = listener.getsockname()[1]
            argv = build_argv(self.s, self.session, port, self.pair_list, self.receipts)
            self.log.info("ascp starting", command=masked(argv))
            child = Child(argv, build_env(os.environ, self.password))
            try:
                error = self._supervise(listener, child)
            finally:
                exit_code = child.stop()
        verdict = error or classify(self.last, exit_code, child.output(), connected=True)
        if verdict is not None and verdict.code != "cancelled" and self._all_arrived():
            # Every file's STOP came in before the failure: it arrived. Retrying would send
            # the manifest twice, which an ingest server takes as a second asset.
            self.log.warning(
                "session failed after every file arrived; counted as sent",
                code=verdict.code,
                error=verdict.message,
            )
            return
        if verdict is not None and self.file_errors:
            verdict.message += "; files: " + "; ".join(self.file_errors[:5])
        if verdict is not None:
            raise verdict

    def _supervise(self, listener: socket.socket, child: Child) -> TransferError | None:
        conn = self._accept(listener, child)
        if conn is None:
            code = child.wait(5)
            return classify(None, code, child.output(), connected=False) or TransferError(
                "ascp never opened its management connection", "no-mgmt", retryable=True
            )
        with conn:
            return self._read_frames(conn, child)

    def _accept(self, listener: socket.socket, child: Child) -> socket.socket | None:
        deadline = time.monotonic() + self.s.connect_timeout
        while time.monotonic() < deadline:
            if self.cancel.is_set() or child.poll() is not None:
                return None
            ready, _, _ = select.select([listener], [], [], POLL)
            if ready:
                conn, _ = listener.accept()
                return conn
        self.log.warning(
            "ascp did not connect to the management port", timeout=self.s.connect_timeout
        )
        return None

    def _read_frames(self, conn: socket.socket, child: Child) -> TransferError | None:
        parser = faspmgr.FrameParser()
        conn.settimeout(POLL)
        last_progress = time.monotonic()
        best = 0
        while True:
            if self.cancel.is_set():
                self._send_cancel(conn)
                return TransferError("cancelled by shutdown", "cancelled", retryable=True)
            if time.monotonic() - last_progress > self.s.stall_timeout:
                self._send_cancel(conn)
                return TransferError(
                    f"no progress for {self.s.stall_timeout:.0f} s: stalled",
                    "stalled",
                    retryable=True,
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
                    best, last_progress = done, time.monotonic()

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
        if frame.type == "STATS":
            done = frame.int("TransferBytes") + frame.int("StartByte")
            self.progress(done)
            return done
        if frame.type == "FILEERROR":
            self.file_errors.append(f"{frame.get('File')}: {frame.get('Description')}")
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
