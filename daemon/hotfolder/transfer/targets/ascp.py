"""The `ascp` target: IBM Aspera's real client, driven exactly as documented (ingest-facts §1).

One session = one ascp process. The daemon listens on 127.0.0.1 *before* spawning ascp with
`-M <port>`, reads FASPMGR 2 frames for progress and the verdict, and treats the last frame
(DONE or ERROR) together with the exit status as the result. Files go in a `--file-pair-list`
written in the state dir (never in a watch folder), the destination as `--dest64`, the
password in ASPERA_SCP_PASS: nothing secret is ever on the command line.

The pure command (argv, env, verdict) is in ascp_command, the manifest's gate in ascp_gate,
one session's run loop in ascp_run.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import structlog

from hotfolder.clock import Clock, SystemClock
from hotfolder.credentials import CredentialError, read_secret
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.transfer.link import Link
from hotfolder.transfer.targets.ascp_command import (
    AscpSettings,
    no_ascp,
    pair_list_text,
    state_dir_error,
)
from hotfolder.transfer.targets.ascp_gate import ManifestGate
from hotfolder.transfer.targets.ascp_run import AscpRun
from hotfolder.transfer.targets.base import (
    Fault,
    Progress,
    Session,
    SharedEvidence,
    TransferError,
    names_all,
)
from hotfolder.transfer.targets.steering import Steering

__all__ = ["INPROGRESS_SUFFIX", "RECEIPT_GLOB", "AscpSettings", "AscpTarget"]

RECEIPT_GLOB = "aspera-transfer-*-manifest.txt"


INPROGRESS_SUFFIX = ".aspera-inprogress"
#: How long a manifest session's receipt waits for a fleet's database before it is dropped.
RECEIPT_PATIENCE = 300.0

log = structlog.get_logger()


class AscpTarget:
    def __init__(
        self,
        settings: AscpSettings,
        link: Link | None = None,
        clock: Clock | None = None,
        shared: SharedEvidence | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.link = link  # windows and live rates (issue 14); None: -l target_rate, fixed
        self.clock = clock or SystemClock()  # the connect and stall deadlines are read on it
        self.shared = shared  # a fleet's evidence: decides a session whichever node asks

    def check(self) -> TransferError | None:
        """The executable runs and the credential can be read (a login itself cannot be
        tried without a session)."""
        path = self.settings.ascp_path
        found = shutil.which(path)
        if found is None:
            return no_ascp(path, "not found" if "/" in path else "not found on PATH")
        try:
            self._password()
        except TransferError as err:
            return err
        return None

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        s = self.settings
        gate = (
            ManifestGate(session, s.work_dir, self.attempt_marker(session), self.shared)
            if session.label == "manifest"
            else None
        )
        pair_list = s.work_dir / f"{session.submission_id}.{session.label}.list"
        try:
            try:
                s.work_dir.mkdir(parents=True, exist_ok=True)
                if gate is not None:
                    gate.prepare()
                listed = gate.listed(session) if gate is not None else session
                pair_list.write_text(pair_list_text(listed), encoding="utf-8")
            except OSError as err:
                raise state_dir_error(err) from err
            password = self._password()
            receipts = self.receipt_dir(session) if gate is not None else None
            steering = Steering(self.link, session) if self.link is not None else None
            run = AscpRun(
                s, session, pair_list, receipts, password, progress, cancel, gate, steering
            )
            run.clock = self.clock  # the deadlines: a test's FakeClock, else the system's
            try:
                run.run()
            except TransferError:
                if gate is not None and gate.opened and run.heard.gate_was_shut(gate):
                    gate.withdraw()  # ascp looked before the gate opened: nothing left
                raise
        finally:
            pair_list.unlink(missing_ok=True)
            if gate is not None:
                if gate.opened:
                    self._share_receipts(session, cancel=cancel)
                gate.clear()

    def delivered(self, session: Session) -> bool | None:
        """A finished ascp receipt naming every file of the session proves delivery; no
        attempt marker proves ascp could never read the manifest (see ManifestGate). In a
        fleet both are asked of the shared journal: the node asking may not be the sender."""
        if self.shared is not None:
            sid = session.submission_id
            if not self.shared.attempted(sid, session.label):
                return False
            receipt = self.shared.receipt(sid, session.label)
            if receipt is not None and names_all(receipt, session):
                return True
            # The sender restarted before its receipt reached the database: it is here. Shared
            # once, not waited for: this is a takeover's decision, on the dispatcher's turn.
            if any(names_all(r, session) for r in self._receipts(session)):
                self._share_receipts(session, patience=0.0)
                return True
            return None
        if not self.attempt_marker(session).exists():
            return False
        return True if any(names_all(r, session) for r in self._receipts(session)) else None

    def _receipts(self, session: Session) -> list[str]:
        folder = self.receipt_dir(session)
        found = sorted(folder.glob(RECEIPT_GLOB)) if folder.is_dir() else []
        return [r.read_text(encoding="utf-8", errors="replace") for r in found]

    def _share_receipts(
        self,
        session: Session,
        cancel: threading.Event | None = None,
        patience: float = RECEIPT_PATIENCE,
    ) -> None:
        """What ascp wrote of the session, into the fleet's journal: a node taking the
        submission over finds it delivered instead of holding it. Missing here (this node
        died first), the takeover holds it for an operator: never sent twice."""
        if self.shared is None:
            return
        receipts = self._receipts(session)
        if receipts:
            body = "\n".join(receipts)
            put = partial(self.shared.put_receipt, session.submission_id, session.label, body)
            self._keep_trying(put, cancel or threading.Event(), patience)

    def attempt_marker(self, session: Session) -> Path:
        return self.receipt_dir(session) / f"{session.label}.attempt"

    def receipt_dir(self, session: Session) -> Path:
        return self.settings.work_dir / "receipts" / session.submission_id

    def _keep_trying(
        self, put: Callable[[], None], cancel: threading.Event, patience: float
    ) -> None:
        """A receipt is proof a takeover would otherwise lack (it would hold the submission):
        wait for a fleet's database a while rather than drop it. Given up, it costs a hold."""
        deadline, pause = self.clock.monotonic() + patience, 0.5
        while True:
            try:
                put()
            except JournalUnavailable as err:
                if self.clock.monotonic() >= deadline or self.clock.wait(cancel, pause):
                    log.warning("receipt not shared with the fleet", error=str(err))
                    return
                pause = min(2 * pause, 10.0)
            else:
                return

    def _password(self) -> str | None:
        try:
            return read_secret(self.settings.password_file, self.settings.password_credential)
        except CredentialError as err:
            raise TransferError(
                str(err), "no-credential", Fault.ADMIN, may_have_arrived=False
            ) from err
