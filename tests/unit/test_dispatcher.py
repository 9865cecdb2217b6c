"""The dispatcher against a fake worker: what starts, what waits and in which order it goes
once a transfer is reaped, what is rejected for good, and what waits for space."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pytest
import yaml

from hotfolder.clock import FakeClock
from hotfolder.config import settings as config
from hotfolder.config.settings import WatchConfig
from hotfolder.model import FileIdentity, ManifestFormat, State, Submission, SubmissionFile
from hotfolder.service.dispatcher import Dispatcher
from hotfolder.service.in_force import InForce
from hotfolder.service.outcomes import Outcomes
from hotfolder.state.journal import Journal, Row
from hotfolder.state.known import JournalKnown
from tests.helpers import wait_until, write_config

QUOTA = 100


@dataclass
class FakeWorker:
    """Delivers only when told: `finish(sid)` completes it in the journal and ends its job."""

    journal: Journal
    clock: FakeClock
    cancel: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)
    _go: dict[str, threading.Event] = field(default_factory=dict)

    def deliver(self, watch: WatchConfig, row: Row) -> None:
        go = self._go.setdefault(row.id, threading.Event())
        self.started.append(row.id)
        assert go.wait(10), f"{row.id} was never finished"
        for state in (
            State.SENDING_MEDIA,
            State.MEDIA_SENT,
            State.SENDING_MANIFEST,
            State.COMPLETE,
        ):
            self.journal.transition(row.id, state, self.clock.now())

    def finish(self, sid: str) -> None:
        self._go.setdefault(sid, threading.Event()).set()


@dataclass
class Room:
    tmp: Path
    journal: Journal
    clock: FakeClock
    worker: FakeWorker
    dispatcher: Dispatcher
    in_force: list[InForce]

    def ready(self, name: str, size: int) -> str:
        """A ready row of `size` bytes (one medium and a one-byte manifest)."""
        ident = FileIdentity(1, 1, 1, hash(name) % 10_000)
        manifest = SubmissionFile(PurePosixPath(f"{name}.xml"), PurePosixPath(f"{name}.xml"), ident)
        medium = replace(manifest, relpath=PurePosixPath(f"{name}.mov"))
        medium = replace(medium, dest=medium.relpath, identity=replace(ident, size=size - 1))
        sub = Submission(name, "w", manifest, (medium,), ManifestFormat.OOYALA_MRSS)
        self.journal.record_ready(sub, self.clock.now(), {})
        return name

    def state(self, sid: str) -> State | None:
        return self.journal.state_of(sid)

    def settle(self, sid: str) -> None:
        """Finish `sid`'s transfer and wait until the pool has it done."""
        future = self.dispatcher.running[sid]
        self.worker.finish(sid)
        wait_until(future.done, what=f"{sid} to end")


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["targets"]["nas"]["quota_bytes"] = QUOTA
    data["min_free_bytes"] = 0
    path.write_text(yaml.safe_dump(data))
    cfg = config.load(path)
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.state_dir / "journal.sqlite")
    clock = FakeClock()
    in_force = [InForce.build(cfg)]
    outcomes = Outcomes(journal, JournalKnown(journal, cfg.state_dir), clock, lambda: in_force[0])
    worker = FakeWorker(journal, clock)
    dispatcher = Dispatcher(
        journal, lambda: in_force[0], clock, outcomes, worker, threading.Event()
    )
    yield Room(tmp_path, journal, clock, worker, dispatcher, in_force)
    for sid in list(dispatcher.running):
        worker.finish(sid)
    dispatcher.shutdown(10)
    journal.close()


def test_what_fits_the_quota_starts_the_rest_waits_in_order_until_reaped(room: Room) -> None:
    for name in ("c", "a", "b"):
        room.ready(name, 60)
        room.dispatcher.dispatch(name)
    assert list(room.dispatcher.running) == ["c"]
    assert room.dispatcher.deferred == {"a", "b"}
    assert room.state("a") is State.READY
    room.settle("c")
    room.dispatcher.reap()
    assert "c" not in room.dispatcher.running
    assert list(room.dispatcher.running) == ["a"], "the waiting go in order"
    room.settle("a")
    room.dispatcher.reap()
    assert list(room.dispatcher.running) == ["b"]
    assert room.dispatcher.deferred == set()
    room.settle("b")
    room.dispatcher.reap()
    assert room.dispatcher.idle()
    assert room.worker.started == ["c", "a", "b"]
    assert room.state("b") is State.COMPLETE


def test_nothing_is_reaped_while_it_runs(room: Room) -> None:
    room.dispatcher.dispatch(room.ready("a", 60))
    room.dispatcher.dispatch(room.ready("b", 60))
    room.dispatcher.reap()
    assert list(room.dispatcher.running) == ["a"]
    assert room.dispatcher.deferred == {"b"}
    assert not room.dispatcher.idle()


def test_a_submission_larger_than_the_quota_is_rejected_with_a_report(room: Room) -> None:
    sid = room.ready("huge", QUOTA + 1)
    room.dispatcher.dispatch(sid)
    assert room.dispatcher.idle()
    row = room.journal.get(sid)
    assert row is not None
    assert row.state is State.FAILED
    assert row.error_code == "over-quota"
    assert (room.tmp / "failed" / sid / "REPORT.txt").exists()


def test_a_full_disk_defers_new_work_until_space_returns(room: Room) -> None:
    full = replace(room.in_force[0].config, min_free_bytes=1 << 62)
    room.in_force[0] = replace(room.in_force[0], config=full)
    room.dispatcher.dispatch(room.ready("a", 10))
    assert room.dispatcher.space_low
    assert room.dispatcher.deferred == {"a"}
    assert room.state("a") is State.READY
    room.dispatcher.turn()
    assert room.dispatcher.deferred == {"a"}, "still full"
    room.in_force[0] = replace(room.in_force[0], config=replace(full, min_free_bytes=0))
    room.dispatcher.turn()
    assert list(room.dispatcher.running) == ["a"]
    assert not room.dispatcher.space_low
