"""Every transition the journal allows and every one it refuses, from the documented state
machine, against a real SQLite journal; and the SQLite journal answers the JournalPort."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotfolder.model import State
from hotfolder.state.journal import ALLOWED_FROM, Journal, StaleTransition
from hotfolder.state.port import JournalPort
from tests.unit.test_journal import sub

NOW = datetime(2026, 11, 23, tzinfo=UTC)
P, R, Q = State.PENDING, State.READY, State.QUEUED
SM, MS, SF = State.SENDING_MEDIA, State.MEDIA_SENT, State.SENDING_MANIFEST
C, F, H = State.COMPLETE, State.FAILED, State.HELD

#: To each state, from which states (written out here, not read from the code).
EXPECTED: dict[State, set[State]] = {
    P: set(),  # only ever recorded, never moved to
    R: {P, Q, SM, H, F},  # released by an operator, retried, put back by recovery
    Q: {R},
    SM: {Q},
    MS: {SM, SF, H},  # back from SF only when no manifest byte left; from H once fixed
    SF: {MS, Q},
    C: {SF},
    F: {P, R, Q, SM, MS, SF},
    H: {Q, SM, MS, SF, C, F, P, R},
}


def test_the_table_is_the_documented_state_machine() -> None:
    assert {to: set(froms) for to, froms in ALLOWED_FROM.items()} == EXPECTED


@pytest.mark.parametrize(("start", "to"), list(itertools.product(State, State)), ids=str)
def test_each_transition_is_allowed_or_refused_as_the_table_says(
    tmp_path: Path, start: State, to: State
) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        journal.record_ready(sub(), NOW)
        with journal._lock:  # put the row in `start` directly: the path there is not tested here
            journal._db.execute("UPDATE submissions SET state = ? WHERE id = 'm-1'", (str(start),))
        if start in EXPECTED[to]:
            journal.transition("m-1", to, NOW, note="by the table")
            assert journal.state_of("m-1") is to
            assert journal.history("m-1")[-1][1:] == (str(to), "by the table")
        else:
            with pytest.raises(StaleTransition):
                journal.transition("m-1", to, NOW)
            assert journal.state_of("m-1") is start
    finally:
        journal.close()


def test_the_sqlite_journal_is_a_journal_port(tmp_path: Path) -> None:
    port: JournalPort = Journal(tmp_path / "j.sqlite")  # mypy checks every method's signature
    try:
        assert port.counts() == {}
    finally:
        port.close()
