"""What the pages show, as plain data for the templates (the templates only lay it out).

Every word about a submission comes from `hotfolder.state.summary`, the code `hotfolder status`
prints with, so the page and the terminal never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from hotfolder import report
from hotfolder.metrics import Counters
from hotfolder.model import FINAL, IN_FLIGHT, State
from hotfolder.state import summary
from hotfolder.state.journal import Row
from hotfolder.window.reading import Reader

#: The overview lists this many of each kind (the full lists are a click away).
OVERVIEW_ROWS = 20
#: The order the overview counts states in: what needs a person first.
STATE_ORDER = (
    State.HELD,
    State.FAILED,
    State.SENDING_MEDIA,
    State.MEDIA_SENT,
    State.SENDING_MANIFEST,
    State.QUEUED,
    State.READY,
    State.PENDING,
    State.COMPLETE,
)


@dataclass(frozen=True, slots=True)
class Line:
    """One submission in a list."""

    id: str
    watch: str
    state: str
    manifest: str
    owner: str
    node: str  # a fleet's workstation that holds or delivered it ('' when none, or no fleet)
    files: str
    size: str
    tries: str
    note: str
    created: str  # local time
    age: str
    percent: int | None  # while being sent
    pace: str


@dataclass(frozen=True, slots=True)
class WatchCounts:
    watch: str
    counts: tuple[tuple[str, int], ...]  # (state, n) in STATE_ORDER, zeros left out
    total: int


def local(at: str, tz: tzinfo | None = None) -> str:
    """An ISO time from the journal in the workstation's zone: '2024-05-01 16:03:12 CEST'."""
    try:
        return report.local_time(datetime.fromisoformat(at), tz)
    except ValueError:
        return at


def speed_of(row: Row, counters: Counters) -> summary.Speed:
    rate = counters.rate_of(row.id) if row.state in IN_FLIGHT else None
    if not rate:
        return None, None
    return rate, max(row.bytes_total - row.bytes_done, 0) / rate


def line(row: Row, now: datetime, counters: Counters, tz: tzinfo | None = None) -> Line:
    done = summary.fraction(row)
    return Line(
        id=row.id,
        watch=row.watch,
        state=str(row.state),
        manifest=row.manifest,
        owner=str(row.detail.get("owner") or ""),
        node=row.node or "",
        files=summary.files(row),
        size=summary.total(row),
        tries=summary.tries(row),
        note=summary.note(row),
        created=local(row.created_at, tz),
        age=summary.age(now, row.created_at),
        percent=None if done is None else round(done * 100),
        pace=summary.pace(speed_of(row, counters)),
    )


def watch_counts(counts: Mapping[str, Mapping[State, int]], watches: Sequence[str]) -> list[Any]:
    found = []
    for watch in sorted({*watches, *counts}):
        by_state = counts.get(watch, {})
        shown = tuple((str(s), by_state[s]) for s in STATE_ORDER if by_state.get(s))
        found.append(WatchCounts(watch, shown, sum(by_state.values())))
    return found


@dataclass(frozen=True, slots=True)
class Overview:
    watches: list[WatchCounts]
    attention: list[Line]  # held and failed: first, someone has to act
    sending: list[Line]
    waiting: list[Line]  # pending, ready, queued
    done: list[Line]  # the latest complete


def overview(
    reader: Reader,
    counters: Counters,
    watches: Sequence[str],
    now: datetime,
    tz: tzinfo | None = None,
) -> Overview:
    def lines(states: frozenset[State]) -> list[Line]:
        return [line(r, now, counters, tz) for r in reader.in_states(states, OVERVIEW_ROWS)]

    return Overview(
        watches=watch_counts(reader.counts(), watches),
        attention=lines(frozenset({State.HELD, State.FAILED})),
        sending=lines(IN_FLIGHT),
        waiting=lines(frozenset({State.PENDING, State.READY})),
        done=lines(frozenset({State.COMPLETE})),
    )


@dataclass(frozen=True, slots=True)
class FileLine:
    path: str
    size: str
    stability: str


@dataclass(frozen=True, slots=True)
class Detail:
    line: Line
    files: list[FileLine]
    waiting: list[tuple[str, list[str]]]
    history: list[tuple[str, str, str]]  # (local time, state, note)
    reason: list[str]  # REPORT.txt's 'What is wrong' lines, for a failure
    error: str  # the last error, for a row that is not failed
    backlot: str
    can_retry: bool
    can_hold: bool
    final: bool


def detail(
    row: Row,
    history: list[tuple[str, str, str]],
    now: datetime,
    counters: Counters,
    tz: tzinfo | None = None,
) -> Detail:
    files = [
        FileLine(
            str(f.get("relpath", "")),
            summary.size(int(f.get("size", 0))),
            "stable" if row.files else "",
        )
        for f in row.files
    ]
    return Detail(
        line=line(row, now, counters, tz),
        files=files,
        waiting=summary.waiting_for(row),
        history=[(local(at, tz), state, note) for at, state, note in history],
        reason=summary.reason(row),
        error=(
            f"{row.error_code}: {row.error_message}"
            if row.error_code and row.state is not State.FAILED
            else ""
        ),
        backlot=summary.backlot(row),
        can_retry=row.state in (State.HELD, State.FAILED),
        can_hold=row.state in (State.PENDING, State.READY),
        final=row.state in FINAL,
    )
