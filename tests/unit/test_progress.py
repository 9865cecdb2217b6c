"""Byte progress: into the journal at most once a second, into the log every 10 % or 30 s."""

from __future__ import annotations

import sqlite3

import pytest
import structlog
from structlog.testing import capture_logs

from hotfolder.metrics import Counters
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.transfer import progress as progress_module
from hotfolder.transfer.progress import ProgressLog
from tests.unit.test_delivery import World, world  # noqa: F401 (the fixture)


def progress(w: World, offset: int = 0, total: int = 1000) -> ProgressLog:
    return ProgressLog(w.journal, w.sub.id, total, offset, w.clock, structlog.get_logger())


def done(w: World) -> int:
    row = w.journal.get(w.sub.id)
    assert row is not None
    return row.bytes_done


def test_the_journal_hears_at_most_once_a_second_with_the_offset_added(
    world: World,  # noqa: F811
) -> None:
    p = progress(world, offset=100)
    world.clock.advance(0.5)
    p(10)
    assert done(world) == 0, "half a second: not yet"
    world.clock.advance(0.5)
    p(20)
    assert done(world) == 120
    world.clock.advance(0.2)
    p(30)
    assert done(world) == 120


def test_the_log_hears_every_tenth_or_every_thirty_seconds(world: World) -> None:  # noqa: F811
    p = progress(world)
    with capture_logs() as logs:
        p(50)  # 5 %: nothing
        p(100)  # 10 %
        p(150)  # 15 %: nothing
        world.clock.advance(30.0)
        p(160)  # 16 %, but 30 s since
    percents = [e["percent"] for e in logs if e["event"] == "progress"]
    assert percents == [10, 16]
    assert logs[-1]["bytes_done"] == 160
    assert logs[-1]["bytes_total"] == 1000


def test_a_failing_write_never_stops_the_transfer_and_is_said_once_a_minute(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disk_full(sid: str, done: int) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(world.journal, "progress", disk_full)
    p = progress(world)
    with capture_logs() as logs:
        for _ in range(5):
            world.clock.advance(20.0)
            p(1)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 2  # at 20 s, then at 80 s (not 40, 60, 100)
    assert "free space" in warnings[0]["hint"]


def test_a_fleet_database_away_never_stops_the_transfer_either(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One node's failed call puts every thread's next one in the backoff: a progress write
    # that raised would stop every running session at each PostgreSQL restart.
    def unreachable(sid: str, done: int) -> None:
        raise JournalUnavailable("journal db cannot be reached", "retries by itself")

    monkeypatch.setattr(world.journal, "progress", unreachable)
    p = progress(world)
    with capture_logs() as logs:
        world.clock.advance(2.0)
        p(1)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "cannot record progress in the journal; the transfer goes on"
    ]


def test_the_pick_up_time_ends_at_the_first_byte_not_at_the_first_journal_write(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ready -> first byte for hotfolder_pickup_seconds: the journal hears of progress up to a
    second late, so the first report itself ends the pick-up time."""
    counters = Counters(world.clock.monotonic)
    monkeypatch.setattr(progress_module, "COUNTERS", counters)
    counters.ready(world.sub.id)
    world.clock.advance(0.2)
    p = progress(world)
    p(0)  # a session that has not moved yet
    assert counters.snapshot().pickup.count == 0
    world.clock.advance(0.1)
    p(10)
    pickup = counters.snapshot().pickup
    assert pickup.count == 1
    assert pickup.total == pytest.approx(0.3)
    world.clock.advance(5)
    p(20)
    assert counters.snapshot().pickup.count == 1  # once per submission
