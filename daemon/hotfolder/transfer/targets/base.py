"""The interface every transfer backend implements."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Protocol

#: Called with the session's bytes done so far.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Session:
    """One transfer session: the media batch, or the manifest alone."""

    submission_id: str
    label: str  # "media" or "manifest": the manifest never shares a session with its media
    files: tuple[tuple[Path, PurePosixPath], ...]  # (source, destination relative to the root)


class Fault(StrEnum):
    """Who can fix a failed session; it decides what the daemon does next."""

    EDITOR = "editor"  # the drop itself (a name, a file): fail it with a report for the editor
    ADMIN = "admin"  # credentials, executables, configuration, the target's mount: hold, tell
    #                  the admin, leave the drop where it is, resume once the fault is gone
    TRANSIENT = "transient"  # the network, a busy server: retry with backoff


class TransferError(Exception):
    """A session failed: who can fix it (`fault`), and whether a file of the session may have
    arrived (`may_have_arrived`: complete at the destination under its own name, which is
    what an ingest server acts on). Only a failure that proves nothing arrived (False) lets a
    manifest session be tried again; True, "cannot tell", is the safe default."""

    def __init__(
        self,
        message: str,
        code: str,
        fault: Fault = Fault.TRANSIENT,
        *,
        may_have_arrived: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fault = fault
        self.may_have_arrived = may_have_arrived

    @property
    def retryable(self) -> bool:
        return self.fault is Fault.TRANSIENT


class Target(Protocol):
    name: str

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        """Deliver every file of the session or raise TransferError."""

    def delivered(self, session: Session) -> bool | None:
        """After a crash or an unclear failure: True if the session's files provably arrived,
        False if provably not (no byte of it could ever leave), None if it cannot be told."""

    def check(self) -> TransferError | None:
        """What would stop any session right now, as far as can be told without starting one
        (credentials, executable, the destination's mount): an ADMIN fault, or None."""


class SharedEvidence(Protocol):
    """Where a fleet keeps a manifest session's evidence (service.fleet.FleetEvidence): in
    the shared journal, beside this node's own files, so any node decides a session the same
    way. `mark_attempt` raises StaleTransition when this node no longer holds the claim: the
    manifest's gate then stays shut."""

    def mark_attempt(self, sid: str, session: str) -> None: ...

    def unmark_attempt(self, sid: str, session: str) -> None: ...

    def put_receipt(self, sid: str, session: str, body: str) -> None: ...

    def attempted(self, sid: str, session: str) -> bool: ...

    def receipt(self, sid: str, session: str) -> str | None: ...


def names_all(receipt: str, session: Session) -> bool:
    """Does a receipt's text name every file of the session (each line ends with the path)?"""
    lines = [line.rstrip() for line in receipt.splitlines()]
    return all(any(line.endswith(str(dest)) for line in lines) for _, dest in session.files)
