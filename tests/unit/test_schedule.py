"""Transfer windows (issue 14): the window at an instant and the next change, across midnight,
week ends and both clock changes in Europe/London and America/New_York; the plain words
check-config prints. Instants are given in UTC and read back in the zone, as a clock would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotfolder import units
from hotfolder.transfer.schedule import (
    Schedule,
    ScheduleError,
    Window,
    explain,
    instant_of,
    kbps,
    local_zone,
    parse_days,
    waiting_words,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")

ISSUE_EXAMPLE = [
    {"days": "mon-fri", "from": "20:00", "to": "07:00", "rate": "900Mbps"},
    {"days": "mon-fri", "from": "07:00", "to": "20:00", "rate": "100Mbps"},
    {"days": "sat-sun", "rate": "1Gbps"},
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def number(s: Schedule, at: datetime) -> int | None:
    w = s.at(at)
    return w.number if w is not None else None


# -- across midnight and the week end ----------------------------------------------------------


def test_a_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    s = Schedule.from_config([{"days": "fri", "from": "20:00", "to": "07:00"}], UTC)
    # 2026-11-27 is a Friday.
    assert number(s, utc(2026, 11, 27, 19, 59)) is None
    assert number(s, utc(2026, 11, 27, 20, 0)) == 1
    assert number(s, utc(2026, 11, 28, 6, 59)) == 1  # Saturday morning: Friday's window
    assert number(s, utc(2026, 11, 28, 7, 0)) is None
    assert number(s, utc(2026, 11, 28, 21, 0)) is None  # Saturday evening: not a Friday
    assert number(s, utc(2026, 11, 27, 3, 0)) is None  # Friday morning: Thursday did not open


def test_the_week_wraps_from_sunday_into_monday() -> None:
    s = Schedule.from_config([{"days": "sun", "from": "22:00", "to": "02:00"}], UTC)
    # 2026-11-29 is a Sunday.
    assert number(s, utc(2026, 11, 30, 1, 0)) == 1
    change = s.next_change(utc(2026, 11, 29, 21, 0))
    assert change is not None
    assert (change.at, change.window) == (utc(2026, 11, 29, 22, 0), s.windows[0])
    closing = s.next_change(utc(2026, 11, 29, 23, 0))
    assert closing is not None
    assert (closing.at, closing.window) == (utc(2026, 11, 30, 2, 0), None)
    # The next opening after Monday is a week away: the horizon reaches it.
    again = s.next_change(utc(2026, 11, 30, 3, 0))
    assert again is not None
    assert again.at == utc(2026, 12, 6, 22, 0)


def test_day_ranges_may_wrap_the_week_end() -> None:
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_days("mon-fri") == {0, 1, 2, 3, 4}
    assert parse_days("mon, wed,FRI") == {0, 2, 4}
    with pytest.raises(ScheduleError, match="mon-fri"):
        parse_days("weekdays")


def test_adjacent_windows_change_rate_without_closing() -> None:
    s = Schedule.from_config(ISSUE_EXAMPLE, UTC)
    change = s.next_change(utc(2026, 11, 23, 12, 0))  # a Monday, office hours
    assert change is not None
    assert change.at == utc(2026, 11, 23, 20, 0)
    assert change.window is not None
    assert change.window.rate == "900M"
    assert kbps(change.window.rate) == 900_000


def test_where_windows_overlap_the_first_listed_applies() -> None:
    s = Schedule.from_config(ISSUE_EXAMPLE, UTC)
    # Saturday 03:00: Friday's overnight window (1) and the weekend (3) both cover it.
    assert number(s, utc(2026, 11, 28, 3, 0)) == 1
    assert number(s, utc(2026, 11, 28, 8, 0)) == 3


def test_no_schedule_never_closes_and_never_changes() -> None:
    s = Schedule.from_config(None, LONDON)
    assert s.is_always
    assert s.at(utc(2026, 3, 29, 1, 30)) is not None
    assert s.next_change(utc(2026, 3, 29, 0, 0)) is None


# -- clock changes ------------------------------------------------------------------------------


def test_london_spring_forward_a_window_opening_in_the_missing_hour_opens_at_the_jump() -> None:
    # 2026-03-29: clocks go from 01:00 GMT to 02:00 BST at 01:00 UTC.
    s = Schedule.from_config([{"from": "01:30", "to": "07:00"}], LONDON)
    assert number(s, utc(2026, 3, 29, 0, 59)) is None
    assert number(s, utc(2026, 3, 29, 1, 0)) == 1  # 02:00 BST, the first reading past 01:30
    change = s.next_change(utc(2026, 3, 29, 0, 0))
    assert change is not None
    assert change.at == utc(2026, 3, 29, 1, 0)
    closing = s.next_change(change.at)
    assert closing is not None
    assert closing.at == local(LONDON, 2026, 3, 29, 7, 0) == utc(2026, 3, 29, 6, 0)


def test_london_spring_night_window_is_an_hour_shorter() -> None:
    s = Schedule.from_config([{"days": "sat", "from": "20:00", "to": "07:00"}], LONDON)
    opening = s.next_change(utc(2026, 3, 28, 12, 0))
    assert opening is not None
    closing = s.next_change(opening.at)
    assert closing is not None
    assert (opening.at, closing.at) == (utc(2026, 3, 28, 20, 0), utc(2026, 3, 29, 6, 0))
    assert closing.at - opening.at == timedelta(hours=10)


def test_london_autumn_the_repeated_hour_does_not_reopen_a_closed_window() -> None:
    # 2026-10-25: clocks go from 02:00 BST back to 01:00 GMT at 01:00 UTC; 01:00-02:00 twice.
    s = Schedule.from_config([{"days": "sat", "from": "20:00", "to": "01:30"}], LONDON)
    first_0130 = local(LONDON, 2026, 10, 25, 1, 30, fold=0)
    assert first_0130 == utc(2026, 10, 25, 0, 30)
    assert number(s, first_0130 - timedelta(seconds=1)) == 1
    assert number(s, first_0130) is None
    # 01:10 GMT, the second time the clock reads 01:10: still closed.
    assert number(s, local(LONDON, 2026, 10, 25, 1, 10, fold=1)) is None
    change = s.next_change(first_0130)
    assert change is not None
    assert change.at == local(LONDON, 2026, 10, 31, 20, 0)


def test_london_autumn_sunday_is_25_hours_long() -> None:
    s = Schedule.from_config([{"days": "sun"}], LONDON)
    opening = s.next_change(utc(2026, 10, 24, 12, 0))
    assert opening is not None
    closing = s.next_change(opening.at)
    assert closing is not None
    assert closing.at - opening.at == timedelta(hours=25)


def test_new_york_spring_forward() -> None:
    # 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00 UTC; 02:00-03:00 never happens.
    assert instant_of(datetime(2026, 3, 8).date(), 150, NEW_YORK) == utc(2026, 3, 8, 7, 0)
    s = Schedule.from_config([{"from": "02:30", "to": "02:45"}], NEW_YORK)
    # A window wholly inside the missing hour does not happen that night...
    assert s.at(utc(2026, 3, 8, 7, 0)) is None
    change = s.next_change(utc(2026, 3, 8, 5, 0))
    assert change is not None
    # ...and the next one opens the following night at 02:30 EDT.
    assert change.at == utc(2026, 3, 9, 6, 30)


def test_new_york_fall_back() -> None:
    # 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00 UTC; 01:00-02:00 twice.
    s = Schedule.from_config([{"from": "01:30", "to": "03:00", "rate": "50Mbps"}], NEW_YORK)
    opening = s.next_change(utc(2026, 11, 1, 4, 0))
    assert opening is not None
    assert opening.at == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)
    closing = s.next_change(opening.at)
    assert closing is not None
    assert closing.at == utc(2026, 11, 1, 8, 0)  # 03:00 EST: two and a half hours later


@settings(max_examples=150, deadline=None)
@given(
    windows=st.lists(
        st.tuples(
            st.sets(st.integers(0, 6), min_size=1),
            st.integers(0, 1439),
            st.integers(1, 1440),
        ),
        min_size=1,
        max_size=3,
    ),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from([LONDON, NEW_YORK, UTC]),
)
def test_nothing_changes_before_the_next_change(
    windows: list[tuple[set[int], int, int]], start: datetime, zone: ZoneInfo
) -> None:
    s = Schedule(
        tuple(Window(frozenset(d), a, b, None, n) for n, (d, a, b) in enumerate(windows, 1)),
        zone,
    )
    now = s.at(start)
    change = s.next_change(start)
    end = change.at if change is not None else start + timedelta(days=8)
    assert end > start
    step = (end - start) / 17
    for k in range(17):
        assert s.at(start + step * k) == now
    if change is not None:
        assert s.at(change.at) == change.window != now


# -- reading and words -------------------------------------------------------------------------


def test_window_rates_take_human_units_and_refuse_shares_of_the_link() -> None:
    s = Schedule.from_config([{"rate": "1.5Gbps"}, {"rate": 500}], UTC)
    assert [w.rate for w in s.windows] == ["1.5G", "500"]
    assert [kbps(w.rate or "") for w in s.windows] == [1_500_000, 500]
    with pytest.raises(units.UnitError, match="bits per second"):
        Schedule.from_config([{"rate": "80%"}], UTC)


def test_explain_names_the_overlap_and_the_gap_of_the_issue_example() -> None:
    lines = explain(Schedule.from_config(ISSUE_EXAMPLE, LONDON))
    assert lines[0].startswith("times are local (Europe/London)")
    assert "window 1 (mon-fri 20:00 to 07:00 the next day, at 900Mbps)" in lines
    assert "window 3 (sat-sun all day, at 1Gbps)" in lines
    assert [line for line in lines if line.startswith(("overlap", "gap"))] == [
        "overlap: windows 1 and 3 both cover sat 00:00-07:00; window 1 applies there",
        "gap: no window covers mon 00:00-07:00; nothing new starts then (submissions wait "
        "for the next window)",
    ]


def test_explain_a_gap_over_the_week_end() -> None:
    lines = explain(
        Schedule.from_config([{"days": "mon-fri", "from": "08:00", "to": "18:00"}], UTC)
    )
    gaps = [line for line in lines if line.startswith("gap")]
    assert gaps[0].startswith("gap: no window covers mon 18:00 to tue 08:00")
    assert gaps[-1].startswith("gap: no window covers fri 18:00 to mon 08:00")
    assert len(gaps) == 5


def test_waiting_words_name_the_window_and_the_time() -> None:
    s = Schedule.from_config([{"days": "mon-fri", "from": "20:00", "to": "07:00"}], LONDON)
    words = waiting_words(s, utc(2026, 11, 23, 17, 0))  # Monday 17:00 GMT
    assert words == "waiting for the 20:00 window (mon 2026-11-23 20:00 GMT, in 3h)"
    assert waiting_words(s, utc(2026, 11, 23, 21, 0)) is None


def test_local_zone_reads_tz_then_the_localtime_link(tmp_path: Path) -> None:
    assert local_zone({"TZ": "America/New_York"}, tmp_path) == NEW_YORK
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Europe/London")
    assert local_zone({}, tmp_path) == LONDON
    assert local_zone({}, tmp_path / "nowhere") == UTC
