"""One way to fail and one outcome event: a tracker's refusal, a quota rejection and a failed
transfer all record `failed`, quarantine with a report, alert, and log the same keys."""

from __future__ import annotations

import os
import pwd
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from structlog.testing import capture_logs

from hotfolder.after import postprocess
from hotfolder.assemble.decisions import Failed, Ready, Waiting
from hotfolder.config import settings as config
from hotfolder.config.settings import WatchConfig
from hotfolder.model import FileIdentity, ManifestFormat, Problem, State, Submission, SubmissionFile
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
    owners: list[str | None]

    @property
    def watch(self) -> WatchConfig:
        return replace(self.w.watch, target="nas")  # the config's target


@pytest.fixture
def room(world: World, tmp_path: Path) -> Room:  # noqa: F811
    (tmp_path / "cfg").mkdir()
    cfg = config.load(write_config(tmp_path / "cfg"))
    in_force = InForce.build(cfg)
    told: list[tuple[str, str, str | None]] = []
    owners: list[str | None] = []

    class Alerts:
        def held(self, sid: str, watch: str, reason: str) -> None:
            told.append((sid, "held", reason))

        def failed(
            self,
            sid: str,
            watch: str,
            reason: str,
            report: str | None = None,
            owner: str | None = None,
        ) -> None:
            told.append((sid, reason, report))
            owners.append(owner)

        def completed(self, sid: str, watch: str, summary: str) -> None:
            told.append((sid, "complete", summary))

    outcomes = Outcomes(
        world.journal,
        JournalKnown(world.journal, world.tmp / "state"),
        world.clock,
        lambda: in_force,
        Alerts(),
    )
    return Room(world, outcomes, told, owners)


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


# -- who dropped it (issue 12) -----------------------------------------------------------------

OWNER_UID = 1  # an account every Debian has ("daemon"); the tests run as root, so chown works


def dropped_by_someone(room: Room, name: str, data: bytes) -> SubmissionFile:
    drop = room.w.watch.path
    (drop / name).write_bytes(data)
    os.chown(drop / name, OWNER_UID, -1)
    return SubmissionFile(
        PurePosixPath(name), PurePosixPath(name), FileIdentity.of((drop / name).lstat())
    )


def test_the_manifest_owner_is_kept_from_intake_to_the_failure_mail(room: Room) -> None:
    name = pwd.getpwuid(OWNER_UID).pw_name
    manifest = dropped_by_someone(room, "m2.xml", b"<rss>2</rss>")
    waiting = Waiting("s-wait", manifest.relpath, missing=(PurePosixPath("v.mp4"),))
    room.outcomes.apply(room.watch, waiting, lambda _sid: None)
    assert room.w.journal.get("s-wait").detail["owner"] == name  # type: ignore[union-attr]

    sub = Submission("s-ready", "w", manifest, room.w.sub.media, ManifestFormat.OOYALA_MRSS)
    room.outcomes.apply(room.watch, Ready(sub), lambda _sid: None)
    row = room.w.journal.get("s-ready")
    assert row is not None
    assert row.detail["owner"] == name
    room.outcomes.delivered(room.watch, row, Refused(PROBLEM))
    failed = room.w.journal.get("s-ready")
    assert failed is not None
    assert failed.detail["owner"] == name  # kept through the failure
    assert room.owners == [name]  # the editor's mail knows whom to tell

    other = dropped_by_someone(room, "m4.xml", b"<rss>4</rss>")  # m2.xml is in failed/ now
    refused = Failed("s-bad", other.relpath, (PROBLEM,), ())
    room.outcomes.apply(room.watch, refused, lambda _sid: None)
    assert room.w.journal.get("s-bad").detail["owner"] == name  # type: ignore[union-attr]
    assert room.owners == [name, name]


def test_a_manifest_swapped_since_it_was_pinned_names_nobody(room: Room) -> None:
    manifest = dropped_by_someone(room, "m3.xml", b"<rss>3</rss>")
    (room.w.watch.path / "m3.xml").unlink()
    (room.w.watch.path / "m3.xml").write_bytes(b"<rss>other</rss>")  # root's now, another inode
    sub = Submission("s-swap", "w", manifest, room.w.sub.media, ManifestFormat.OOYALA_MRSS)
    room.outcomes.apply(room.watch, Ready(sub), lambda _sid: None)
    assert room.w.journal.get("s-swap").detail["owner"] is None  # type: ignore[union-attr]


def test_a_failed_delivery_keeps_the_hint_for_the_page(room: Room) -> None:
    """The window shows REPORT.txt's words: the problems (with their hint) are in the row."""
    room.outcomes.delivered(room.watch, room.w.row(), Refused(PROBLEM))
    (problem,) = room.w.row().detail["problems"]
    assert (problem["code"], problem["hint"]) == ("fasp-56", "rename it")
