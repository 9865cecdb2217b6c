"""One way to fail and one outcome event: a tracker's refusal, a quota rejection and a failed
transfer all record `failed`, quarantine with a report, alert, and log the same keys."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from structlog.testing import capture_logs

from hotfolder.after import postprocess
from hotfolder.config import settings as config
from hotfolder.config.settings import WatchConfig
from hotfolder.model import Problem, State
from hotfolder.service.in_force import InForce
from hotfolder.service.outcomes import Outcomes, Rejection
from hotfolder.state.known import JournalKnown
from hotfolder.transfer.delivery import Held, Refused, Sent
from tests.helpers import write_config
from tests.unit.test_delivery import World, world  # noqa: F401 (the fixture)

EVENT_KEYS = {"submission_id", "watch", "state", "code", "reason", "files", "bytes", "report"}
PROBLEM = Problem("fasp-56", "the transfer to 'fake' failed: illegal characters", "rename it")


@dataclass
class Room:
    w: World
    outcomes: Outcomes
    told: list[tuple[str, str, str | None]]

    @property
    def watch(self) -> WatchConfig:
        return replace(self.w.watch, target="nas")  # the config's target


@pytest.fixture
def room(world: World, tmp_path: Path) -> Room:  # noqa: F811
    (tmp_path / "cfg").mkdir()
    cfg = config.load(write_config(tmp_path / "cfg"))
    in_force = InForce.build(cfg)
    told: list[tuple[str, str, str | None]] = []

    class Alerts:
        def held(self, sid: str, watch: str, reason: str) -> None:
            told.append((sid, "held", reason))

        def failed(self, sid: str, watch: str, reason: str, report: str | None = None) -> None:
            told.append((sid, reason, report))

        def completed(self, sid: str, watch: str, summary: str) -> None:
            told.append((sid, "complete", summary))

    outcomes = Outcomes(
        world.journal,
        JournalKnown(world.journal, world.tmp / "state"),
        world.clock,
        lambda: in_force,
        Alerts(),
    )
    return Room(world, outcomes, told)


def ended_events(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if str(e["event"]).startswith("submission ")]


def test_a_failed_delivery_is_recorded_quarantined_told_and_logged_once(room: Room) -> None:
    row = room.w.row()
    with capture_logs() as logs:
        room.outcomes.delivered(room.watch, row, Refused(PROBLEM))
    final = room.w.row()
    assert final.state is State.FAILED
    assert final.error_code == "fasp-56"
    report = room.w.tmp / "failed" / row.id / postprocess.REPORT_TXT
    assert "illegal characters" in report.read_text()
    assert room.told == [(row.id, PROBLEM.message, str(report))]
    (event,) = ended_events(logs)
    assert event["event"] == "submission failed"
    assert set(event) >= EVENT_KEYS
    assert event["report"] == str(report)
    assert event["files"] == 2


def test_every_end_logs_the_same_keys(room: Room) -> None:
    """failed at intake, held, complete: one event each, the same keys every time."""
    fresh = Rejection("s-new", PurePosixPath("x.xml"), (), (PROBLEM,), new=True)
    with capture_logs() as logs:
        room.outcomes.reject(room.watch, fresh)
        room.outcomes.delivered(room.watch, room.w.row(), Held(Problem("admin:x", "no pw")))
    with capture_logs() as more:
        room.outcomes.finish(room.watch, room.w.row())
    events = ended_events(logs) + ended_events(more)
    assert [e["state"] for e in events] == ["failed", "held", "complete"]
    assert all(set(e) - {"log_level"} == EVENT_KEYS | {"event"} for e in events)


def test_a_quarantine_that_fails_is_still_told_and_logged(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kw: object) -> Path:
        raise PermissionError(13, "Permission denied", "failed")

    monkeypatch.setattr(postprocess, "quarantine", broken)
    row = room.w.row()
    with capture_logs() as logs:
        room.outcomes.delivered(room.watch, row, Refused(PROBLEM))
    assert room.w.row().state is State.FAILED
    assert room.told == [(row.id, PROBLEM.message, None)]
    (event,) = ended_events(logs)
    assert event["report"] is None
    assert any(e["event"].startswith("cannot quarantine") for e in logs)


def test_a_complete_delivery_is_finished_and_told(room: Room) -> None:
    for state in (State.SENDING_MEDIA, State.MEDIA_SENT, State.SENDING_MANIFEST, State.COMPLETE):
        room.w.journal.transition(room.w.sub.id, state, room.w.clock.now())
    row = room.w.row()
    room.outcomes.delivered(room.watch, row, Sent())
    assert room.w.row().postprocessed
    assert room.told == [(row.id, "complete", "2 files, 1006 bytes")]
