"""One ascp session run: listen, spawn, accept the management connection, read FASPMGR
frames, watch for stalls and cancel, reap, and turn what ascp said into a verdict."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from hotfolder.clock import Clock, SystemClock
from hotfolder.transfer import faspmgr
from hotfolder.transfer.process import Child, masked
from hotfolder.transfer.targets.ascp_command import (
    AscpSettings,
    build_argv,
    build_env,
    classify,
    no_ascp,
)
from hotfolder.transfer.targets.ascp_gate import ManifestGate
from hotfolder.transfer.targets.base import Fault, Progress, Session, TransferError
from hotfolder.transfer.targets.steering import Steering

POLL = 0.2
#: The frames the verdict is read from (the last one of these counts); STATS and
#: NOTIFICATION say nothing of it.
VERDICT_FRAMES = frozenset({"INIT", "SESSION", "STOP", "FILEERROR", "ARGSTOP", "DONE", "ERROR"})


@dataclass(slots=True)
class Heard:
    """What ascp said in its frames: the last verdict-bearing frame, whether data moved, and
    which files failed, could not be opened, or arrived."""

    last: faspmgr.Frame | None = None
    data_phase: bool = False  # a frame showed files counted or bytes moving
    file_errors: list[str] = field(default_factory=list)
    unopened: set[str] = field(default_factory=set)  # sources ascp could not find or stat
    arrived: set[str] = field(default_factory=set)  # destinations whose STOP frame came in

    def all_arrived(self, session: Session) -> bool:
        return bool(session.files) and all(
            any(path.endswith(str(dest)) for path in self.arrived) for _, dest in session.files
        )

    def gate_was_shut(self, gate: ManifestGate | None) -> bool:
        """The manifest's staged copy was out of ascp's reach: never opened, or looked for
        before it was (nothing of it can have left)."""
        return gate is not None and (not gate.opened or str(gate.staged) in self.unopened)

    def may_have_arrived(self, gate: ManifestGate | None, verdict: TransferError) -> bool:
        """Could a file of this session be complete at the destination? Answered from what
        ascp could have read and what it said before any data could move; never from its
        word about data already moving."""
        if gate is not None and not gate.opened:
            return False  # the manifest did not exist under the name ascp was given
        if gate is not None and str(gate.staged) in self.unopened:
            # ascp looked for the staged copy before the rename (the daemon slower than
            # ascp's login): it could not open it, so it sent none of it.
            return False
        if self.last is None:
            return False  # it never spoke to us, and ascp exits when it cannot (1.8)
        if self.data_phase:
            return True
        code = self.last.int("Code", 0) if self.last.type == "ERROR" else 0
        return code not in faspmgr.PRE_TRANSFER_CODES and verdict.code != "fasp-8"


class AscpRun:
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
        gate: ManifestGate | None = None,
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
        self.heard = Heard()

    @property
    def last(self) -> faspmgr.Frame | None:
        """The last frame that bears on the verdict (INIT ... DONE, ERROR), if any."""
        return self.heard.last

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
                raise no_ascp(self.s.ascp_path, err.strerror or str(err)) from err
            try:
                error = self._supervise(listener, child)
            finally:
                exit_code = child.stop()
        verdict = error or classify(self.last, exit_code, child.output(), connected=True)
        if verdict is None and self.gate is not None and not self.gate.opened:
            verdict = TransferError(  # it never could read the manifest: not a success
                "ascp reported success before it could read the manifest", "gate-shut"
            )
        if (
            verdict is not None
            and verdict.code != "cancelled"
            and self.heard.all_arrived(self.session)
        ):
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
        if self.heard.file_errors:
            verdict.message += "; files: " + "; ".join(self.heard.file_errors[:5])
        verdict.may_have_arrived = self.heard.may_have_arrived(self.gate, verdict)
        if self.heard.gate_was_shut(self.gate) and verdict.fault is Fault.EDITOR:
            # ascp looked for the staged copy before the gate opened (a paused or slow
            # daemon): the editor's files are fine and nothing left; try again.
            verdict.fault = Fault.TRANSIENT
        raise verdict

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
        if frame.type in VERDICT_FRAMES:
            self.heard.last = frame
        if frame.type in faspmgr.DATA_PHASE:
            self.heard.data_phase = True
        if frame.type == "INIT" and self.gate is not None and self.child is not None:
            self.gate.open(self.child)
        if frame.type == "STATS":
            done = frame.int("TransferBytes") + frame.int("StartByte")
            self.progress(done)
            return done
        if frame.type == "FILEERROR":
            self.heard.file_errors.append(f"{frame.get('File')}: {frame.get('Description')}")
            if frame.int("Code") in faspmgr.SOURCE_NOT_FOUND:
                self.heard.unopened.add(frame.get("File"))
            self.log.warning(
                "file failed",
                file=frame.get("File"),
                code=frame.get("Code"),
                error=frame.get("Description"),
            )
        elif frame.type == "STOP":
            self.heard.arrived.add(frame.get("File"))
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

    def _send_cancel(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # ascp may be gone already; signals follow
            conn.sendall(faspmgr.encode({"Type": "CANCEL"}))


def _sender(conn: socket.socket) -> Callable[[bytes], None]:
    """Write a command to ascp; one that has just exited is not an error (its EOF follows)."""

    def send(data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)

    return send
