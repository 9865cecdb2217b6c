"""A media session paused at its window's end (issue 14) is not a failure and not a retry:
the submission is ready again, for the next window."""

from __future__ import annotations

import pytest

from hotfolder.model import State
from hotfolder.transfer.delivery import Paused
from hotfolder.transfer.targets import TransferError
from hotfolder.transfer.targets.steering import WINDOW_CLOSED
from tests.unit.test_delivery import FakeTarget, World, world  # noqa: F401 (the fixture)


def test_a_paused_media_session_makes_the_submission_ready_again(world: World) -> None:  # noqa: F811
    paused = TransferError("paused at the end of its transfer window", WINDOW_CLOSED)
    target = FakeTarget(script={"media": [paused]})
    with pytest.raises(Paused):
        world.delivery(target).run(world.row())
    row = world.row()
    assert row.state is State.READY
    assert row.attempts == 0  # not a failed try
    assert target.sent == ["media"]  # not retried inside the delivery, nor the manifest sent
