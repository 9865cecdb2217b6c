"""What to do, on start, with each submission the last run left mid-way. Pure: the daemon
asks, then acts (transition, dispatch, finish), so every case is tested without a crash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hotfolder.model import State
from hotfolder.state.journal import Row

UNCONFIRMED = (
    "the daemon stopped while the manifest was being sent and its delivery cannot "
    "be proven; sending it again could create a duplicate asset"
)


@dataclass(frozen=True, slots=True)
class Resume:
    to: State | None  # the transition to commit first (None: none)
    then: str  # "dispatch" (send what is left), "finish" (archive/delete), "hold"
    note: str = ""


def resume(row: Row, delivered: Callable[[], bool | None]) -> Resume | None:
    """The next step for `row`, or None if nothing is left to do. `delivered` asks the target
    for evidence about the manifest session (only called for sending-manifest)."""
    state = row.state
    if state is State.COMPLETE:
        return None if row.postprocessed else Resume(None, "finish")
    if state is State.SENDING_MEDIA:
        return Resume(State.READY, "dispatch", "resumed after restart: media sent again")
    if state is State.QUEUED:
        return Resume(State.READY, "dispatch", "resumed after restart")
    if state in (State.READY, State.MEDIA_SENT):
        return Resume(None, "dispatch")
    if state is State.SENDING_MANIFEST:
        evidence = delivered()
        if evidence:
            return Resume(State.COMPLETE, "finish", "manifest found delivered after restart")
        if evidence is False:
            return Resume(
                State.MEDIA_SENT, "dispatch", "restart: the manifest session never started"
            )
        return Resume(State.HELD, "hold", UNCONFIRMED)
    return None
