"""A target's link (issue 14): the rate in force (operator, window, target) and whether new
sessions may start, as a fake clock crosses window edges and an override expires."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from hotfolder import units
from hotfolder.clock import FakeClock
from hotfolder.transfer.link import Link, LinkSettings, RateSource, WindowEnd

# 2026-11-23 is a Monday.
MONDAY_1959 = datetime(2026, 11, 23, 19, 59, tzinfo=UTC)
OPTIONS = {
    "schedule": [
        {"days": "mon-fri", "from": "20:00", "to": "07:00", "rate": "900Mbps"},
        {"days": "mon-fri", "from": "07:00", "to": "20:00"},
    ],
    "at_window_end": "pause",
    "max_sessions": 2,
    "target_rate": "100M",
}


def link(clock: FakeClock, **options: object) -> Link:
    return Link("aspera", LinkSettings.from_options({**OPTIONS, **options}, UTC), clock)


def test_settings_are_typed() -> None:
    s = LinkSettings.from_options(OPTIONS, UTC)
    assert s.at_window_end is WindowEnd.PAUSE
    assert s.max_sessions == 2
    assert [w.rate for w in s.schedule.windows] == ["900M", None]
    default = LinkSettings.from_options({}, UTC)
    assert (default.at_window_end, default.max_sessions) == (WindowEnd.FINISH, None)
    assert default.schedule.is_always


def test_the_rate_follows_the_window_as_the_clock_crosses_its_edge() -> None:
    clock = FakeClock(wall=MONDAY_1959)
    ln = link(clock)
    before = ln.now()
    assert (before.rate, before.source) == ("100M", RateSource.TARGET)  # office: no own rate
    clock.advance(60)
    after = ln.now()
    assert (after.rate, after.source) == ("900M", RateSource.WINDOW)
    clock.advance(11 * 3600)  # Tuesday 07:00: office hours again
    assert ln.now().rate == "100M"


def test_closed_outside_every_window_and_says_until_when() -> None:
    clock = FakeClock(wall=datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # Saturday noon
    ln = link(clock)
    assert not ln.may_start()
    assert ln.waiting() == "waiting for the 07:00 window (mon 2026-11-30 07:00 UTC, in 1d19h)"
    clock.advance(43 * 3600)
    assert ln.may_start()
    assert ln.waiting() is None


def test_an_operator_rate_wins_until_it_expires_and_names_who_set_it() -> None:
    clock = FakeClock(wall=MONDAY_1959)
    ln = link(clock)
    with capture_logs() as logs:
        ln.set_rate("300Mbps", "alice (uid 1000)", seconds=2 * 3600)
        now = ln.now()
        assert (now.rate, now.source) == ("300M", RateSource.OPERATOR)
        clock.advance(2 * 3600 - 1)
        assert ln.now().rate == "300M"
        clock.advance(1)
        assert (ln.now().rate, ln.now().source) == ("900M", RateSource.WINDOW)
    events = [(e["event"], e.get("who")) for e in logs]
    assert events == [
        ("rate changed by an operator", "alice (uid 1000)"),
        ("operator's rate expired", "alice (uid 1000)"),
    ]


def test_an_operator_rate_must_be_bits_per_second() -> None:
    ln = link(FakeClock(wall=MONDAY_1959))
    with pytest.raises(units.UnitError):
        ln.set_rate("50%", "bob")
    with pytest.raises(units.UnitError, match="bits per second"):
        ln.set_rate("10MB/s", "bob")
    ln.set_rate("1Gbps", "bob")
    ln.clear_rate("bob")
    assert ln.now().source is RateSource.TARGET


def test_no_schedule_is_always_open_at_the_target_rate() -> None:
    ln = Link("nas", LinkSettings.from_options({}, UTC), FakeClock())
    now = ln.now()
    assert now.open
    assert (now.rate, now.source) == (None, RateSource.NONE)
