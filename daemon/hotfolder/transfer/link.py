"""Sharing a target's link (issue 14): whether new sessions may start, and at what rate the
running ones should go, right now.

One `Link` per target, read by the dispatcher (may a session start?), by every running ascp
session (poll `now()`: a different rate is sent to ascp as a FASPMGR RATE command, a closed
window under `at_window_end: pause` cancels the session) and by status; written by the
operator's `hotfolder rate` through the control channel. The rate in force is, first that
applies: the operator's override (until it expires), the open window's rate, the target's own
`target_rate`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

import structlog

from hotfolder.clock import Clock
from hotfolder.config.sections import AscpTargetSettings
from hotfolder.transfer.schedule import Schedule, Window, absolute_rate, waiting_words

log = structlog.get_logger()


class WindowEnd(StrEnum):
    """What a session still running when its window closes does."""

    FINISH = "finish"  # goes on to the end, at the rate it had
    PAUSE = "pause"  # cancelled at the end; the next window resumes it (ascp -k)


class RateSource(StrEnum):
    OPERATOR = "operator"
    WINDOW = "window"
    TARGET = "target"  # the target's own target_rate
    NONE = "none"  # nothing set: ascp's (the server's) default


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """A target's link-sharing keys, typed (the schema holds the defaults)."""

    schedule: Schedule
    at_window_end: WindowEnd = WindowEnd.FINISH
    max_sessions: int | None = None
    target_rate: str | None = None

    @classmethod
    def of(cls, settings: AscpTargetSettings, zone: tzinfo) -> LinkSettings:
        """A typed ascp target's keys, its windows read in `zone` (the workstation's)."""
        return cls(
            schedule=Schedule.from_config(settings.schedule, zone),
            at_window_end=WindowEnd(settings.at_window_end),
            max_sessions=settings.max_sessions,
            target_rate=settings.target_rate,
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any], zone: tzinfo) -> LinkSettings:
        return cls(
            schedule=Schedule.from_config(options.get("schedule"), zone),
            at_window_end=WindowEnd(options.get("at_window_end", WindowEnd.FINISH)),
            max_sessions=options.get("max_sessions"),
            target_rate=options.get("target_rate"),
        )


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's rate: who set it, and until when (None: until changed)."""

    rate: str
    who: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class LinkNow:
    window: Window | None  # the open window; None: closed, nothing new starts
    rate: str | None  # as ascp -l takes it; None: leave sessions as they started
    source: RateSource
    override: Override | None = None

    @property
    def open(self) -> bool:
        return self.window is not None


class Link:
    """Thread-safe. Reads the wall clock through `clock`, so tests step time."""

    def __init__(self, name: str, settings: LinkSettings, clock: Clock) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._override: Override | None = None
        # The window in force between two instants, so a session polling five times a second
        # does not redo the calendar arithmetic each time.
        self._cached: tuple[datetime, datetime | None, Window | None] | None = None
        self._sessions = 0

    def reconfigure(self, settings: LinkSettings) -> None:
        """A reload's new keys; an operator's rate and the running sessions stay."""
        with self._lock:
            self.settings = settings
            self._cached = None

    def now(self) -> LinkNow:
        at = self.clock.now()
        with self._lock:
            window = self._window(at)
            override = self._current_override(at)
        if override is not None:
            return LinkNow(window, override.rate, RateSource.OPERATOR, override)
        if window is not None and window.rate is not None:
            return LinkNow(window, window.rate, RateSource.WINDOW)
        rate = self.settings.target_rate
        return LinkNow(window, rate, RateSource.TARGET if rate else RateSource.NONE)

    def may_start(self) -> bool:
        return self.now().open

    def waiting(self) -> str | None:
        """'waiting for the 20:00 window (...)' while closed, else None."""
        return waiting_words(self.settings.schedule, self.clock.now())

    def set_rate(self, rate: str, who: str, seconds: float | None = None) -> Override:
        """An operator's rate for every session of this target, now and until `seconds`
        have passed (None: until changed or cleared). Raises units.UnitError."""
        at = self.clock.now()
        until = at + timedelta(seconds=seconds) if seconds is not None else None
        override = Override(absolute_rate(rate), who, until)
        with self._lock:
            self._override = override
            running = self._sessions
        log.warning(
            "rate changed by an operator",
            target=self.name,
            rate=override.rate,
            who=who,
            until=until.isoformat() if until else None,
            running_sessions=running,
        )
        return override

    def clear_rate(self, who: str) -> None:
        with self._lock:
            self._override = None
        log.warning("operator's rate cleared", target=self.name, who=who)

    @property
    def sessions(self) -> int:
        return self._sessions

    def attach(self) -> None:
        """A session starts following this link."""
        with self._lock:
            self._sessions += 1

    def detach(self) -> None:
        with self._lock:
            self._sessions -= 1

    def _window(self, at: datetime) -> Window | None:
        cached = self._cached
        if cached is not None and cached[0] <= at and (cached[1] is None or at < cached[1]):
            return cached[2]
        schedule = self.settings.schedule
        window = schedule.at(at)
        change = schedule.next_change(at)
        self._cached = (at, change.at if change else None, window)
        return window

    def _current_override(self, at: datetime) -> Override | None:
        override = self._override
        if override is not None and override.until is not None and at >= override.until:
            self._override = None
            log.warning(
                "operator's rate expired", target=self.name, rate=override.rate, who=override.who
            )
            return None
        return override
