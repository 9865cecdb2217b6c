"""The gate the manifest passes on its way to ascp: a staged copy, opened only after the
attempt marker is durable (issue 16, item 17)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import structlog

from hotfolder.durable import durable_write, fsync_dir
from hotfolder.state.journal import StaleTransition
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.transfer.process import Child
from hotfolder.transfer.targets.ascp_command import state_dir_error
from hotfolder.transfer.targets.base import Session, SharedEvidence

log = structlog.get_logger()


class ManifestGate:
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

    def __init__(
        self,
        session: Session,
        work_dir: Path,
        marker: Path,
        shared: SharedEvidence | None = None,
    ) -> None:
        """`work_dir`: the target's (the staged copy goes in its outbox); `marker`: the
        session's attempt marker (AscpTarget.attempt_marker); `shared`: a fleet's journal,
        where the marker goes too, fenced (a node that lost its claim cannot open)."""
        self.session = session
        self.shared = shared
        ((self.source, self.dest),) = session.files
        folder = work_dir / "outbox"
        self.staged = folder / f"{session.submission_id}.manifest"
        self.hidden = self.staged.with_name(self.staged.name + self.HIDDEN)
        self.marker = marker
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
        except OSError as err:
            raise state_dir_error(err) from err  # shut: nothing could leave
        if self.shared is not None:  # raises if the claim is lost: shut, nothing left
            self.shared.mark_attempt(self.session.submission_id, self.session.label)
        try:
            os.rename(self.hidden, self.staged)
        except OSError as err:
            raise state_dir_error(err) from err  # shut: nothing could leave
        self.opened = True
        return True

    def withdraw(self) -> None:
        """ascp looked for the staged copy before the gate opened (a daemon slower than its
        login), so the session is proven to have sent nothing of the manifest: take the
        marker back, or a crash before the next try's gate opens would be held for nothing.
        If it cannot be taken back, that costs at most such a needless hold."""
        try:
            self.marker.unlink(missing_ok=True)
            fsync_dir(self.marker.parent)
            if self.shared is not None:
                self.shared.unmark_attempt(self.session.submission_id, self.session.label)
        except (OSError, StaleTransition, JournalUnavailable) as err:
            log.warning("attempt marker left in place", error=str(err))

    def listed(self, session: Session) -> Session:
        """The session as ascp is told it: the staged copy as the source."""
        return Session(session.submission_id, session.label, ((self.staged, self.dest),))

    def clear(self) -> None:
        self.staged.unlink(missing_ok=True)
        self.hidden.unlink(missing_ok=True)
