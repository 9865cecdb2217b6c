"""Transfer windows: when a target may start sessions, and at what rate (issue 14).

A target's `schedule:` is a list of windows in the workstation's local time zone:

    - {days: mon-fri, from: "20:00", to: "07:00", rate: 900Mbps}   # opens Mon-Fri evenings
    - {days: sat-sun, rate: 1Gbps}                                 # all day

`days` are the days a window *opens* (a window from 20:00 to 07:00 on fri ends on Saturday
morning); no `days` is every day; no `from`/`to` is the whole day; `to` at or before `from`
crosses midnight. No schedule at all is one window that never closes, as before.

Pure: every answer is a function of the windows, the zone and the instant asked about, so the
tests step a fake clock across midnight, week ends and both DST changes. Edges are instants:
a local time the clock reads twice (autumn) is its first reading; a local time the clock never
reads (spring) is the moment the clock jumps past it. So a window "01:30 to 07:00" opens at the
jump on the spring night and is an hour shorter; the whole-day window is 23 or 25 hours long.
Where windows overlap, the one listed first applies (check-config says where).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotfolder import units
from hotfolder.config.schema_targets import DAYS_PATTERN

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DAY = 1440  # minutes
WEEK = 7 * DAY
#: How far ahead `next_change` looks: past any week's pattern, plus the days a window spans.
_HORIZON_DAYS = 9


class ScheduleError(ValueError):
    """A window that cannot be read; str() says why in plain words."""


@dataclass(frozen=True, slots=True)
class Window:
    """One entry of a schedule. Minutes are after local midnight; `end` at or before `start`
    means the next day. `number` is the 1-based place in the config, for messages."""

    days: frozenset[int]
    start: int  # 0..1439
    end: int  # 1..1440
    rate: str | None  # as ascp -l takes it (units.ascp_rate); None: the target's own
    number: int

    @property
    def length(self) -> int:
        """Minutes from opening to closing on a day without a clock change."""
        return self.end - self.start if self.end > self.start else self.end + DAY - self.start

    @property
    def opens(self) -> str:
        return _hhmm(self.start)

    def describe(self) -> str:
        """`mon-fri 20:00 to 07:00 the next day, at 900M` (the config's own words)."""
        if self.length == DAY and self.start == 0:
            hours = "all day"
        else:
            nextday = " the next day" if self.end <= self.start and self.end != DAY else ""
            hours = f"{_hhmm(self.start)} to {_hhmm(self.end)}{nextday}"
        rate = f", at {_human_rate(self.rate)}" if self.rate else ", at the target's own rate"
        return f"window {self.number} ({describe_days(self.days)} {hours}{rate})"


#: No schedule: open all the time, at the target's own rate.
ALWAYS = Window(frozenset(range(7)), 0, DAY, None, 0)


@dataclass(frozen=True, slots=True)
class Change:
    """From `at` on, `window` applies (None: outside every window)."""

    at: datetime
    window: Window | None


@dataclass(frozen=True, slots=True)
class Schedule:
    windows: tuple[Window, ...]
    zone: tzinfo

    @classmethod
    def always(cls, zone: tzinfo = UTC) -> Schedule:
        return cls((ALWAYS,), zone)

    @classmethod
    def from_config(cls, entries: Sequence[Mapping[str, Any]] | None, zone: tzinfo) -> Schedule:
        """The schedule from a target's `schedule:` list (schema-checked; rates may still be
        human units). An empty or missing list is ALWAYS."""
        if not entries:
            return cls.always(zone)
        return cls(tuple(window(e, n) for n, e in enumerate(entries, 1)), zone)

    @property
    def is_always(self) -> bool:
        return self.windows == (ALWAYS,)

    def at(self, instant: datetime) -> Window | None:
        """The window open at `instant` (the first listed, if several), or None."""
        local_day = instant.astimezone(self.zone).date()
        found: Window | None = None
        for w in self.windows:
            for day in (local_day - timedelta(days=n) for n in (2, 1, 0)):
                start, end = self._occurrence(w, day)
                if start <= instant < end and (found is None or w.number < found.number):
                    found = w
        return found

    def next_change(self, after: datetime) -> Change | None:
        """The first instant after `after` at which a different window (or none) applies;
        None if it never changes (one window open all week)."""
        now = self.at(after)
        first = after.astimezone(self.zone).date() - timedelta(days=2)
        edges = sorted(
            {
                edge
                for w in self.windows
                for day in (first + timedelta(days=n) for n in range(_HORIZON_DAYS + 2))
                for edge in self._occurrence(w, day)
                if edge > after
            }
        )
        for edge in edges:
            then = self.at(edge)
            if then != now:
                return Change(edge, then)
        return None

    def next_opening(self, after: datetime) -> Change | None:
        """When a window next opens, if none is open at `after` (else None)."""
        if self.at(after) is not None:
            return None
        change = self.next_change(after)
        return change if change is not None and change.window is not None else None

    def _occurrence(self, w: Window, day: date) -> tuple[datetime, datetime]:
        """[opening, closing) of `w` on the local `day`, as UTC instants; empty when `w` does
        not open that day (or its hours never happen: a window inside the spring gap)."""
        if day.weekday() not in w.days:
            return _NEVER, _NEVER
        end = w.end if w.end > w.start else w.end + DAY
        return instant_of(day, w.start, self.zone), instant_of(day, end, self.zone)


_NEVER = datetime.min.replace(tzinfo=UTC)


def instant_of(day: date, minute: int, zone: tzinfo) -> datetime:
    """The UTC instant at which local clocks read `minute` minutes after midnight of `day`
    (minute may pass 1440: the next day). Read twice: the first time. Never read: the
    moment the clock jumps past it."""
    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _reading(first, zone) == wall:
        return first
    # In the spring gap: fold 0 and fold 1 are the two offsets either side of the jump; the
    # jump lies between them. Find the first second whose reading is at or past `wall`.
    lo, hi = sorted((first, wall.replace(tzinfo=zone, fold=1).astimezone(UTC)))
    lo_s, hi_s = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while lo_s < hi_s:
        mid = (lo_s + hi_s) // 2
        if _reading(datetime.fromtimestamp(mid, UTC), zone) >= wall:
            hi_s = mid
        else:
            lo_s = mid + 1
    return datetime.fromtimestamp(lo_s, UTC)


def _reading(instant: datetime, zone: tzinfo) -> datetime:
    """What a local clock shows at `instant`, without the zone."""
    return instant.astimezone(zone).replace(tzinfo=None)


# -- reading the config ----------------------------------------------------------------------


def window(entry: Mapping[str, Any], number: int) -> Window:
    """One schema-checked `schedule:` entry as a Window."""
    rate = entry.get("rate")
    return Window(
        days=parse_days(str(entry.get("days", "mon-sun"))),
        start=parse_time(str(entry.get("from", "00:00"))),
        end=parse_time(str(entry.get("to", "24:00"))) or DAY,
        rate=absolute_rate(rate) if rate is not None else None,
        number=number,
    )


def parse_days(text: str) -> frozenset[int]:
    """`mon-fri` -> {0..4}; `fri-mon` wraps the week end; `mon,wed` -> {0, 2}."""
    if not re.fullmatch(DAYS_PATTERN, text.lower()):
        raise ScheduleError(
            f"{text!r} is not a list of days: write mon-fri, sat-sun or mon,wed,fri"
        )
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        days.update((a + n) % 7 for n in range((b - a) % 7 + 1))
    return frozenset(days)


def parse_time(text: str) -> int:
    """`07:30` -> 450 minutes after midnight; `24:00` -> 1440."""
    found = re.fullmatch(r"([0-9]{2}):([0-9]{2})", text.strip())
    if found is None or int(found[1]) * 60 + int(found[2]) > DAY or int(found[2]) > 59:
        raise ScheduleError(f'{text!r} is not a time of day: write it as "07:00" (quoted)')
    return int(found[1]) * 60 + int(found[2])


def absolute_rate(value: int | float | str) -> str:
    """A window's (or an operator's) rate as ascp -l takes it. A percentage is refused: a
    running session's RATE command takes bits per second, not a share of the link."""
    rate = units.ascp_rate(value)
    if math.isnan(units.bits_per_second(rate)):
        raise units.UnitError(
            f"{value!r} is a share of the link: a window's or an operator's rate must be in "
            "bits per second (100Mbps, 1Gbps), as ascp's RATE command takes it"
        )
    return rate


def kbps(rate: str) -> int:
    """An ascp rate (`900M`) as the Kbps that FASPMGR's RATE frame takes (900000)."""
    return max(1, round(units.bits_per_second(rate) / 1000))


def describe_days(days: Iterable[int]) -> str:
    """{0,1,2,3,4} -> 'mon-fri'; every day -> 'every day'."""
    wanted = sorted(set(days))
    if len(wanted) == 7:
        return "every day"
    runs: list[list[int]] = []
    for d in wanted:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 6:  # a run across the week end
        runs[0] = runs.pop() + runs[0]
    return ",".join(
        DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs
    )


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _human_rate(rate: str) -> str:
    """`900M` -> '900Mbps' (what people wrote); a plain number is ascp's Kbps."""
    suffix = {"K": "kbps", "M": "Mbps", "G": "Gbps"}.get(rate[-1:].upper())
    return f"{rate[:-1]}{suffix}" if suffix else f"{rate}kbps"


# -- the workstation's zone ---------------------------------------------------------------


def local_zone(environ: Mapping[str, str] = os.environ, etc: Path = Path("/etc")) -> tzinfo:
    """The workstation's time zone with its DST rules (not today's fixed offset): $TZ, else
    /etc/localtime (its link target names the zone), else UTC."""
    name = environ.get("TZ", "").removeprefix(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = etc / "localtime"
    try:
        target = os.readlink(localtime)
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    try:
        with open(localtime, "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


def zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


# -- in plain words, for check-config and status -------------------------------------------


def explain(schedule: Schedule) -> list[str]:
    """What the schedule means, overlaps and gaps included, in plain words (check-config).
    Computed on a week of wall-clock minutes: clock changes only move edges by an hour."""
    if schedule.is_always:
        return ["no schedule: sessions may start at any time, at the target's own rate"]
    lines = [
        f"times are local ({zone_name(schedule.zone)}); where windows overlap, the one "
        "listed first applies"
    ]
    lines += [w.describe() for w in schedule.windows]
    cover = _cover(schedule.windows)
    gaps = _runs(cover, lambda ws: not ws)
    overlaps = _runs(cover, lambda ws: len(ws) > 1)
    for start, end, ws in overlaps:
        first = min(ws)
        others = " and ".join(str(n) for n in sorted(ws) if n != first)
        lines.append(
            f"overlap: windows {first} and {others} both cover {_span(start, end)}; "
            f"window {first} applies there"
        )
    if not gaps:
        lines.append("no gaps: some window is open at every hour of the week")
    for start, end, _ in gaps:
        lines.append(
            f"gap: no window covers {_span(start, end)}; nothing new starts then "
            "(submissions wait for the next window)"
        )
    return lines


def _cover(windows: Sequence[Window]) -> list[frozenset[int]]:
    """For each minute of a Monday-to-Sunday week, the windows open in it."""
    cover: list[set[int]] = [set() for _ in range(WEEK)]
    for w in windows:
        for day in w.days:
            for minute in range(day * DAY + w.start, day * DAY + w.start + w.length):
                cover[minute % WEEK].add(w.number)
    return [frozenset(c) for c in cover]


def _runs(
    cover: list[frozenset[int]], wanted: Callable[[frozenset[int]], bool]
) -> list[tuple[int, int, frozenset[int]]]:
    """Maximal runs of minutes [start, end) where `wanted(windows)` holds and the windows are
    the same; a run may wrap from Sunday into Monday."""
    marks = [c if wanted(c) else None for c in cover]
    if all(m == marks[0] for m in marks):
        return [(0, WEEK, marks[0])] if marks[0] is not None else []
    # Start where the pattern changes, so no run is cut at Monday 00:00.
    origin = next(i for i in range(WEEK) if marks[i] != marks[i - 1])
    runs: list[tuple[int, int, frozenset[int]]] = []
    i = 0
    while i < WEEK:
        m = marks[(origin + i) % WEEK]
        j = i
        while j < WEEK and marks[(origin + j) % WEEK] == m:
            j += 1
        if m is not None:
            runs.append(((origin + i) % WEEK, (origin + j) % WEEK, m))
        i = j
    return sorted(runs, key=lambda r: r[0])


def _span(start: int, end: int) -> str:
    """Minutes of the week as words: 'sat 00:00-07:00', 'fri 20:00 to mon 07:00',
    'the whole week'."""
    length = (end - start) % WEEK
    if length == 0:
        return "the whole week"
    day = start // DAY
    if length <= DAY and (start % DAY) + length <= DAY:
        return f"{DAY_NAMES[day]} {_hhmm(start % DAY)}-{_hhmm(start % DAY + length)}"
    return (
        f"{DAY_NAMES[day]} {_hhmm(start % DAY)} to {DAY_NAMES[(end // DAY) % 7]} {_hhmm(end % DAY)}"
    )


def waiting_words(schedule: Schedule, now: datetime) -> str | None:
    """'waiting for the 20:00 window (mon 20:00 CET, in 3h12m)' when no window is open at
    `now`; None when one is (or when none ever opens)."""
    opening = schedule.next_opening(now)
    if opening is None or opening.window is None:
        return None
    local = opening.at.astimezone(schedule.zone)
    wait = units.format_seconds(max(0, round((opening.at - now).total_seconds() / 60) * 60))
    return (
        f"waiting for the {opening.window.opens} window "
        f"({DAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M %Z}, in {wait})"
    )
