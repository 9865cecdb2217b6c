"""Delivery against a scripted target: media then the manifest, what is retried, what is
held and where it resumes, what fails, and that nothing leaves a row in a working state."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.clock import FakeClock
from hotfolder.config.settings import WatchConfig
from hotfolder.model import (
    FileIdentity,
    ManifestFormat,
    State,
    Submission,
    SubmissionFile,
    submission_id,
)
from hotfolder.state.journal import Journal, Row
from hotfolder.transfer.delivery import Cancelled, Delivery, Ending, Refused, RetryPolicy
from hotfolder.transfer.faults import AdminHolds
from hotfolder.transfer.targets import Fault, Session, TransferError
from hotfolder.transfer.targets.base import Progress

#: What the fake target does for one session: raise, or run a side effect and succeed.
Step = TransferError | Exception | Callable[[], None] | None


@dataclass
class FakeTarget:
    name: str = "fake"
    script: dict[str, list[Step]] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)  # session labels, in order
    evidence: bool | None = None
    problem: TransferError | None = None

    def send(self, session: Session, progress: Progress, cancel: threading.Event) -> None:
        self.sent.append(session.label)
        steps = self.script.get(session.label, [])
        step = steps.pop(0) if steps else None
        progress(1)
        if isinstance(step, Exception):
            raise step
        if step is not None:
            step()

    def delivered(self, session: Session) -> bool | None:
        return self.evidence

    def check(self) -> TransferError | None:
        return self.problem


class Teller:
    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def held(self, sid: str, watch: str, reason: str) -> None:
        self.told.append((sid, reason))


@dataclass
class World:
    tmp: Path
    journal: Journal
    clock: FakeClock
    watch: WatchConfig
    sub: Submission
    cancel: threading.Event

    def delivery(self, target: FakeTarget, tries: int = 3) -> Delivery:
        retry = RetryPolicy(tries=tries, initial_delay=1.0, factor=2.0, max_delay=4.0)
        return Delivery(self.watch, target, self.journal, self.clock, self.cancel, retry)

    def row(self) -> Row:
        row = self.journal.get(self.sub.id)
        assert row is not None
        return row


def pinned(root: Path, name: str, data: bytes) -> SubmissionFile:
    path = root / name
    path.write_bytes(data)
    return SubmissionFile(PurePosixPath(name), PurePosixPath(name), FileIdentity.of(path.stat()))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    drop = tmp_path / "drop"
    drop.mkdir()
    video = pinned(drop, "v.mp4", b"v" * 1000)
    manifest = pinned(drop, "m.xml", b"<rss/>")
    sid = submission_id("w", manifest.relpath, manifest.identity)
    sub = Submission(sid, "w", manifest, (video,), ManifestFormat.OOYALA_MRSS)
    watch = WatchConfig(
        name="w",
        path=drop,
        target="fake",
        stability_seconds=1.0,
        after_success="keep",
        archive_dir=tmp_path / "archive",
        failed_dir=tmp_path / "failed",
        incomplete_after=60.0,
        rescan_seconds=60.0,
        max_manifest_bytes=1 << 20,
        ignore=(),
    )
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    clock = FakeClock()
    journal.record_ready(sub, clock.now(), {"assets": [{"guid": "g", "title": "t"}]})
    journal.transition(sid, State.QUEUED, clock.now())
    yield World(tmp_path, journal, clock, watch, sub, threading.Event())
    journal.close()


def transient(code: str = "fasp-16", arrived: bool = False) -> TransferError:
    return TransferError("connection lost", code, Fault.TRANSIENT, may_have_arrived=arrived)


def test_media_then_the_manifest_alone(world: World) -> None:
    target = FakeTarget()
    assert world.delivery(target).run(world.row()).ending is Ending.COMPLETE
    assert target.sent == ["media", "manifest"]
    assert world.row().state is State.COMPLETE


def test_a_transient_media_error_is_retried_an_editor_error_is_not(world: World) -> None:
    target = FakeTarget(script={"media": [transient(), None]})
    assert world.delivery(target).run(world.row()).ending is Ending.COMPLETE
    assert target.sent == ["media", "media", "manifest"]


def test_an_editor_error_fails_at_once_with_a_report(world: World) -> None:
    bad = TransferError("illegal characters", "fasp-56", Fault.EDITOR, may_have_arrived=False)
    target = FakeTarget(script={"media": [bad]})
    ended = world.delivery(target).run(world.row())
    assert isinstance(ended, Refused)
    assert ended.problem.code == "fasp-56"
    assert "the transfer to 'fake' failed: illegal characters" in ended.problem.message
    assert target.sent == ["media"]
    assert world.row().state is State.SENDING_MEDIA, "failed is the caller's to record"
    assert not (world.tmp / "failed").exists(), "delivery moves no file"


def test_transient_errors_are_retried_until_the_tries_run_out(world: World) -> None:
    target = FakeTarget(script={"media": [transient() for _ in range(5)]})
    assert world.delivery(target, tries=3).run(world.row()).ending is Ending.FAILED
    assert target.sent == ["media"] * 3


@pytest.mark.parametrize(
    ("evidence", "state", "manifests"),
    [(None, State.HELD, 1), (True, State.COMPLETE, 1), (False, State.COMPLETE, 2)],
)
def test_a_manifest_session_that_may_have_delivered_is_decided_by_evidence(
    world: World, evidence: bool | None, state: Ending, manifests: int
) -> None:
    """Unknown outcome: never retried blindly. Proven there: complete. Proven not: retried."""
    target = FakeTarget(script={"manifest": [transient(arrived=True)]}, evidence=evidence)
    assert world.delivery(target).run(world.row()).ending == state
    assert target.sent.count("manifest") == manifests
    if state is Ending.HELD:
        row = world.row()
        assert row.error_code == "manifest-unconfirmed"
        assert "duplicate" in str(row.error_message)


def test_a_manifest_failure_proven_before_it_left_is_retried(world: World) -> None:
    target = FakeTarget(script={"manifest": [transient(arrived=False)]}, evidence=None)
    assert world.delivery(target).run(world.row()).ending is Ending.COMPLETE
    assert target.sent == ["media", "manifest", "manifest"]


def test_an_admin_fault_holds_with_the_step_to_resume_and_leaves_the_drop(
    world: World,
) -> None:
    no_pw = TransferError(
        "cannot read the secret from /etc/pw", "no-credential", Fault.ADMIN, may_have_arrived=False
    )
    target = FakeTarget(script={"media": [no_pw]})
    assert world.delivery(target).run(world.row()).ending is Ending.HELD
    row = world.row()
    assert row.error_code == "admin:no-credential"
    assert "Only an admin can fix this" in str(row.error_message)
    assert row.detail["hold"]["resume"] == "ready"
    assert row.detail["assets"], "the rest of the detail is kept"
    assert (world.watch.path / "v.mp4").exists(), "the editor's files stay"
    assert not (world.tmp / "failed").exists()


def test_an_admin_fault_on_the_manifest_before_it_left_resumes_at_media_sent(
    world: World,
) -> None:
    licence = TransferError("no licence", "fasp-29", Fault.ADMIN, may_have_arrived=False)
    target = FakeTarget(script={"manifest": [licence]})
    assert world.delivery(target).run(world.row()).ending is Ending.HELD
    assert world.row().detail["hold"]["resume"] == "media-sent"
    assert target.sent == ["media", "manifest"]


def test_admin_holds_are_told_rechecked_with_backoff_and_resumed(world: World) -> None:
    no_pw = TransferError("no password", "no-credential", Fault.ADMIN, may_have_arrived=False)
    target = FakeTarget(script={"manifest": [no_pw]})
    world.delivery(target).run(world.row())
    holds, teller = AdminHolds(), Teller()
    dispatched: list[str] = []
    target.problem = no_pw  # still missing
    for _ in range(3):
        holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
        world.clock.advance(1.0)
    assert [sid for sid, _ in teller.told] == [world.sub.id], "told once"
    assert dispatched == []
    world.clock.advance(5.0)
    holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
    assert dispatched == [], "the check still fails: stays held, checked later"
    target.problem = None  # the admin put the password back
    world.clock.advance(5.0)
    holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
    assert dispatched == [], "backoff: the next check is 10 s after the last"
    world.clock.advance(5.0)
    holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
    assert dispatched == [world.sub.id]
    assert world.row().state is State.MEDIA_SENT
    assert world.delivery(target).run(world.row()).ending is Ending.COMPLETE


def test_held_again_for_the_same_reason_after_it_resumed_is_told_again(world: World) -> None:
    no_pw = TransferError("no password", "no-credential", Fault.ADMIN, may_have_arrived=False)
    target = FakeTarget(script={"manifest": [no_pw, no_pw]})
    world.delivery(target).run(world.row())
    holds, teller = AdminHolds(), Teller()
    dispatched: list[str] = []
    holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
    world.clock.advance(60.0)
    holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
    assert dispatched == [world.sub.id], "the admin fault looked fixed: resumed"
    world.clock.advance(1.0)
    assert world.delivery(target).run(world.row()).ending is Ending.HELD  # it was not
    world.clock.advance(1.0)
    holds.tick(world.journal, world.clock, {"w": target}, dispatched.append, teller)
    assert [sid for sid, _ in teller.told] == [world.sub.id] * 2, "a second hold is news"


def test_cancel_leaves_the_state_for_the_next_start(world: World) -> None:
    def shutdown() -> None:
        world.cancel.set()
        raise transient()

    target = FakeTarget(script={"media": [shutdown]})
    with pytest.raises(Cancelled):
        world.delivery(target).run(world.row())
    assert world.row().state is State.SENDING_MEDIA


def test_a_failing_progress_write_does_not_stop_the_transfer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(sid: str, done: int) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(world.journal, "progress", disk_full)
    target = FakeTarget(script={"media": [lambda: world.clock.advance(2.0)]})
    assert world.delivery(target).run(world.row()).ending is Ending.COMPLETE


@pytest.mark.parametrize(
    "error", [FileNotFoundError(2, "No such file", "ascp"), RuntimeError("bug")]
)
def test_an_unexpected_error_ends_held_with_the_reason_not_in_a_working_state(
    world: World, error: Exception
) -> None:
    target = FakeTarget(script={"media": [error]})
    assert world.delivery(target).run(world.row()).ending is Ending.HELD
    row = world.row()
    assert row.error_code == "internal-error"
    assert type(error).__name__ in str(row.error_message)


@pytest.mark.parametrize("change", ["overwrite", "truncate", "replace"])
def test_media_changed_during_the_media_session_fail_and_the_manifest_never_goes(
    world: World, change: str
) -> None:
    video = world.watch.path / "v.mp4"

    def edit_while_sending() -> None:
        world.clock.advance(1.0)
        if change == "overwrite":
            st = video.stat()
            with open(video, "r+b") as f:
                f.write(b"EDITED")  # same size, same inode: the mtime tells
            os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse clocks
        elif change == "truncate":
            video.write_bytes(b"v" * 10)
        else:
            tmp = video.with_name("v.tmp")
            tmp.write_bytes(b"v" * 1000)
            tmp.replace(video)

    target = FakeTarget(script={"media": [edit_while_sending]})
    ended = world.delivery(target).run(world.row())
    assert target.sent == ["media"], "the manifest must never go over changed media"
    assert isinstance(ended, Refused)
    assert ended.problem.code == "source-changed-in-flight"
    assert "'v.mp4' changed while it was being sent" in ended.problem.message
    assert "drop it again" in ended.problem.message


def test_retries_wait_the_policys_delays_between_tries(world: World) -> None:
    times: list[float] = []

    def note_time_then_fail() -> None:
        times.append(world.clock.monotonic())
        raise transient()

    def note_time() -> None:
        times.append(world.clock.monotonic())

    target = FakeTarget(script={"media": [note_time_then_fail, note_time_then_fail, note_time]})
    assert world.delivery(target, tries=3).run(world.row()).ending is Ending.COMPLETE
    assert [b - a for a, b in itertools.pairwise(times)] == [1.0, 2.0]
    assert world.row().attempts == 2


class ShutdownInThePause(FakeClock):
    """Shutdown comes while the delivery waits to try again."""

    def wait(self, event: threading.Event, seconds: float) -> bool:
        event.set()
        return True


def test_shutdown_during_a_retry_pause_stops_without_another_try(world: World) -> None:
    target = FakeTarget(script={"media": [transient(), None]})
    retry = RetryPolicy(tries=3, initial_delay=1.0)
    delivery = Delivery(
        world.watch, target, world.journal, ShutdownInThePause(), world.cancel, retry
    )
    with pytest.raises(Cancelled):
        delivery.run(world.row())
    assert target.sent == ["media"]
    assert world.row().state is State.SENDING_MEDIA, "left for the next start"
