"""What to do, on start, with each submission the last run left mid-way. Pure: the daemon
asks, then acts (transition, dispatch, finish), so every case is tested without a crash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from hotfolder.model import State
from hotfolder.state.journal import Row

UNCONFIRMED = (
    "the daemon stopped while the manifest was being sent and its delivery cannot "
    "be proven; sending it again could create a duplicate asset"
)


#: error_code of a submission held because its manifest's delivery cannot be proven.
MANIFEST_UNCONFIRMED = "manifest-unconfirmed"


class Then(StrEnum):
    """What the daemon does once the transition (if any) is committed."""

    DISPATCH = "dispatch"  # send what is left
    FINISH = "finish"  # archive or delete what was sent
    HOLD = "hold"  # tell the operator; nothing moves until `hotfolder retry`


@dataclass(frozen=True, slots=True)
class Resume:
    to: State | None  # the transition to commit first (None: none)
    then: Then
    note: str = ""

    @property
    def error_code(self) -> str | None:
        """What the journal records as the reason for a hold (None: not a hold)."""
        return MANIFEST_UNCONFIRMED if self.then is Then.HOLD else None


def resume(row: Row, delivered: Callable[[], bool | None]) -> Resume | None:
    """The next step for `row`, or None if nothing is left to do. `delivered` asks the target
    for evidence about the manifest session (only called for sending-manifest)."""
    state = row.state
    if state is State.COMPLETE:
        return None if row.postprocessed else Resume(None, Then.FINISH)
    if state is State.SENDING_MEDIA:
        return Resume(State.READY, Then.DISPATCH, "resumed after restart: media sent again")
    if state is State.QUEUED:
        return Resume(State.READY, Then.DISPATCH, "resumed after restart")
    if state in (State.READY, State.MEDIA_SENT):
        return Resume(None, Then.DISPATCH)
    if state is State.SENDING_MANIFEST:
        evidence = delivered()
        if evidence:
            return Resume(State.COMPLETE, Then.FINISH, "manifest found delivered after restart")
        if evidence is False:
            return Resume(
                State.MEDIA_SENT, Then.DISPATCH, "restart: the manifest session never started"
            )
        return Resume(State.HELD, Then.HOLD, UNCONFIRMED)
    return None
