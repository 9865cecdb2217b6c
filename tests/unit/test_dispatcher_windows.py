"""The dispatcher's side of issue 14, against a fake worker and a fake clock: the highest
priority starts first and equal watches take turns, a target's max_sessions holds, nothing
starts outside every window (and what waits says for which window), the window's opening
starts it, and a transfer paused at its window's end waits for the next one instead of being
taken for an operator's release."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from hotfolder.clock import FakeClock
from hotfolder.config import settings as config
from hotfolder.config.settings import WatchConfig
from hotfolder.model import FileIdentity, ManifestFormat, State, Submission, SubmissionFile
from hotfolder.service.dispatcher import Dispatcher
from hotfolder.service.in_force import InForce
from hotfolder.service.outcomes import Outcomes
from hotfolder.state.journal import Journal, Row
from hotfolder.state.known import JournalKnown
from tests.helpers import wait_until
from tests.unit.test_dispatcher import FakeWorker

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def write(tmp: Path, watches: dict[str, int], workers: int, **target: Any) -> config.Config:
    """Watches (name: priority) sending to one ascp target (never run: the worker is fake)."""
    watch_list: list[dict[str, Any]] = []
    for name, priority in watches.items():
        (tmp / name).mkdir()
        watch_list.append(
            {"name": name, "path": str(tmp / name), "target": "aspera", "priority": priority}
        )
    data = {
        "state_dir": str(tmp / "state"),
        "workers": workers,
        "min_free_bytes": 0,
        "watches": watch_list,
        "targets": {
            "aspera": {
                "type": "ascp",
                "host": "127.0.0.1",
                "user": "editor",
                "password_file": str(tmp / "pw"),
                **target,
            }
        },
    }
    path = tmp / "hotfolder.yaml"
    path.write_text(yaml.safe_dump(data))
    return config.load(path)


@dataclass
class Room:
    journal: Journal
    clock: FakeClock
    worker: FakeWorker
    dispatcher: Dispatcher
    cfg: config.Config

    def ready(self, sid: str, watch: str) -> str:
        ident = FileIdentity(1, 1, 1, hash(sid) % 10_000)
        manifest = SubmissionFile(PurePosixPath(f"{sid}.xml"), PurePosixPath(f"{sid}.xml"), ident)
        medium = replace(manifest, relpath=PurePosixPath(f"{sid}.mov"), dest=PurePosixPath(sid))
        sub = Submission(sid, watch, manifest, (medium,), ManifestFormat.OOYALA_MRSS)
        self.journal.record_ready(sub, self.clock.now(), {})
        self.dispatcher.dispatch(sid)
        return sid

    def finish_running(self) -> None:
        """End every running transfer and reap, as the main loop does."""
        futures = list(self.dispatcher.running.values())
        for sid in list(self.dispatcher.running):
            self.worker.finish(sid)
        wait_until(lambda: all(f.done() for f in futures), what="the transfers to end")
        self.dispatcher.reap()


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    rooms: list[Room] = []

    def build(watches: dict[str, int], workers: int = 1, **target: Any) -> Room:
        cfg = write(tmp_path, watches, workers, **target)
        cfg.state_dir.mkdir(parents=True)
        journal = Journal(cfg.state_dir / "journal.sqlite")
        clock = FakeClock(wall=MONDAY_NOON)
        in_force = InForce.build(cfg, clock, UTC)
        current = lambda: in_force  # noqa: E731
        outcomes = Outcomes(journal, JournalKnown(journal, cfg.state_dir), clock, current)
        worker = FakeWorker(journal, clock)
        dispatcher = Dispatcher(journal, current, clock, outcomes, worker, threading.Event())
        rooms.append(Room(journal, clock, worker, dispatcher, cfg))
        return rooms[-1]

    yield build
    for room in rooms:
        for sid in list(room.dispatcher.running):
            room.worker.finish(sid)
        room.dispatcher.shutdown(10)
        room.journal.close()


def test_the_highest_priority_starts_first_and_equal_watches_take_turns(make: Any) -> None:
    room = make({"bulk": 5, "news": 5, "urgent": 9})
    for n in range(1, 5):
        room.ready(f"bulk{n}", "bulk")  # one editor's big drop, first in
    room.ready("news1", "news")
    room.ready("urgent1", "urgent")
    assert list(room.dispatcher.running) == ["bulk1"], "one worker: the first ready starts"
    while room.dispatcher.running:
        room.finish_running()
    # urgent1 jumps the line (priority 9); news1 then goes before the rest of bulk, which
    # was served last (the watches take turns), though it came after all of it.
    assert room.worker.started == ["bulk1", "urgent1", "news1", "bulk2", "bulk3", "bulk4"]


def test_a_target_runs_no_more_than_max_sessions(make: Any) -> None:
    room = make({"w": 5}, workers=3, max_sessions=2)
    for n in range(4):
        room.ready(f"s{n}", "w")
    assert sorted(room.dispatcher.running) == ["s0", "s1"], "two of three workers used"
    assert room.journal.state_of("s2") is State.READY
    room.finish_running()
    assert sorted(room.dispatcher.running) == ["s2", "s3"]


def test_nothing_starts_outside_every_window_and_the_wait_is_said(make: Any) -> None:
    room = make({"w": 5}, workers=2, schedule=[{"from": "20:00", "to": "07:00"}])
    room.ready("clip", "w")
    room.dispatcher.turn()
    assert room.dispatcher.running == {}
    assert room.journal.state_of("clip") is State.READY
    assert room.dispatcher.waiting() == (
        "target aspera: 1 ready, waiting for the 20:00 window (mon 2026-11-23 20:00 UTC, in 8h)"
    )
    assert room.dispatcher.idle(), "--once does not wait for a window"
    room.clock.advance(8 * 3600)  # 20:00: the window opens
    room.dispatcher.turn()
    assert list(room.dispatcher.running) == ["clip"]
    assert room.dispatcher.waiting() is None


@dataclass
class PausingWorker(FakeWorker):
    """Ends each transfer ready again, as Delivery does when Steering pauses it."""

    def deliver(self, watch: WatchConfig, row: Row) -> None:
        self.started.append(row.id)
        self.journal.transition(row.id, State.SENDING_MEDIA, self.clock.now())
        self.journal.transition(row.id, State.READY, self.clock.now())


def test_a_transfer_paused_at_its_window_end_waits_for_the_next_window(make: Any) -> None:
    room = make({"w": 5}, schedule=[{"from": "12:00", "to": "12:01"}], at_window_end="pause")
    room.dispatcher.worker = room.worker = PausingWorker(room.journal, room.clock)
    room.ready("clip", "w")
    wait_until(room.dispatcher.running["clip"].done, what="the paused transfer")
    room.clock.advance(120)  # 12:02: the window is over
    with capture_logs() as logs:
        room.dispatcher.turn()
        room.dispatcher.turn()
    assert room.worker.started == ["clip"], "not sent again while the window is closed"
    assert "clip" in room.dispatcher.queue
    events = [e["event"] for e in logs]
    assert "released by an operator" not in events
    assert "paused: waits for the next transfer window" in events
    room.clock.advance(24 * 3600 - 120)  # Tuesday 12:00: the next window
    room.dispatcher.turn()
    wait_until(lambda: room.worker.started == ["clip", "clip"], what="the resume")
