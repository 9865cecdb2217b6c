"""What a restart does with each state the last run may have left (no crash needed)."""

from dataclasses import replace

import pytest

from hotfolder.model import State
from hotfolder.state.journal import Row
from hotfolder.state.recovery import UNCONFIRMED, Resume, Then, resume


def row(state: State, postprocessed: bool = False) -> Row:
    return Row(
        id="s",
        watch="w",
        manifest="m.xml",
        format=None,
        state=state,
        files=[],
        bytes_total=0,
        bytes_done=0,
        attempts=0,
        error_code=None,
        error_message=None,
        detail={},
        postprocessed=postprocessed,
        created_at="",
        updated_at="",
    )


def no_evidence_needed() -> bool | None:
    raise AssertionError("only sending-manifest may ask the target for evidence")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            State.SENDING_MEDIA,
            Resume(State.READY, Then.DISPATCH, "resumed after restart: media sent again"),
        ),
        (State.QUEUED, Resume(State.READY, Then.DISPATCH, "resumed after restart")),
        (State.READY, Resume(None, Then.DISPATCH)),
        (State.MEDIA_SENT, Resume(None, Then.DISPATCH)),
        (State.COMPLETE, Resume(None, Then.FINISH)),
    ],
)
def test_resume_without_evidence(state: State, expected: Resume) -> None:
    assert resume(row(state), no_evidence_needed) == expected


def test_nothing_to_do_for_finished_or_settled_rows() -> None:
    assert resume(row(State.COMPLETE, postprocessed=True), no_evidence_needed) is None
    for state in (State.FAILED, State.HELD, State.PENDING):
        assert resume(row(state), no_evidence_needed) is None


def test_sending_manifest_follows_the_evidence() -> None:
    base = row(State.SENDING_MANIFEST)
    assert resume(base, lambda: True) == Resume(
        State.COMPLETE, Then.FINISH, "manifest found delivered after restart"
    )
    assert resume(base, lambda: False) == Resume(
        State.MEDIA_SENT, Then.DISPATCH, "restart: the manifest session never started"
    )
    held = resume(replace(base), lambda: None)
    assert held == Resume(State.HELD, Then.HOLD, UNCONFIRMED)
    assert "duplicate" in UNCONFIRMED
