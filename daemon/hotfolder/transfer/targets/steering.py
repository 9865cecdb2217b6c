"""A running ascp session following its target's Link (issue 14): the rate in force when it
starts goes on the command line (-l); a different one later is sent as a FASPMGR RATE command,
so crossing into another window, or an operator's `hotfolder rate`, never stops the session.
Under `at_window_end: pause`, a media session still running when its window closes is
cancelled (ascp's -k resumes it in the next window, and finished files are not sent again).
A manifest session is never cancelled for a window: it is one small file, and cutting it
off could leave the ingest server a manifest it cannot be proven to have."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from hotfolder.transfer import faspmgr
from hotfolder.transfer.link import Link, WindowEnd
from hotfolder.transfer.schedule import kbps
from hotfolder.transfer.targets.base import Session, TransferError

#: TransferError.code of a session paused at its window's end; not a failure (delivery).
WINDOW_CLOSED = "window-closed"


class Steering:
    def __init__(self, link: Link, session: Session) -> None:
        self.link = link
        self.pausable = session.label == "media"
        self.rate: str | None = None
        # Paused only at the end of a window it ran in: a session an operator started outside
        # every window (hotfolder retry) is not cut off at once.
        self.window_seen = False
        self.log = structlog.get_logger().bind(
            submission_id=session.submission_id, session=session.label, target=link.name
        )

    def start(self, configured: str | None) -> str | None:
        """The rate for ascp -l: the link's rate in force, else the target's own."""
        now = self.link.now()
        self.window_seen = now.open
        self.rate = now.rate or configured
        self.link.attach()
        return self.rate

    def stop(self) -> None:
        self.link.detach()

    def step(self, send: Callable[[bytes], None]) -> TransferError | None:
        """Called between frames: send what changed; a TransferError if the session is to
        stop here (paused at its window's end; a CANCEL was sent)."""
        now = self.link.now()
        if now.open:
            self.window_seen = True
        elif (
            self.window_seen
            and self.pausable
            and self.link.settings.at_window_end is WindowEnd.PAUSE
        ):
            send(faspmgr.encode({"Type": "CANCEL"}))
            waiting = self.link.waiting() or "waiting for the next window"
            self.log.warning("paused: the transfer window ended", waiting=waiting)
            return TransferError(
                f"paused at the end of its transfer window; {waiting}", WINDOW_CLOSED
            )
        if now.rate is not None and now.rate != self.rate:
            send(faspmgr.rate_command(kbps(now.rate)))
            self.log.info(
                "rate changed while sending",
                rate=now.rate,
                was=self.rate,
                because=str(now.source),
                window=now.window.number if now.window is not None else None,
                who=now.override.who if now.override is not None else None,
            )
            self.rate = now.rate
        return None
