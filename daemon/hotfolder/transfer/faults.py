"""Held submissions: tell the admin, and resume what an admin fault held once it is gone.

A delivery that meets a fault only an admin can fix (a credential, the executable, the
target's mount, a FASP login or licence) holds the submission with the reason and the step to
resume from (delivery.Delivery._hold). `AdminHolds.tick`, called from the daemon's main loop,
tells the admin once about every new hold, and re-checks admin holds with backoff (5 s,
doubling to 5 min, growing with the holds in a row): when the target's own check passes, the
submission goes back to the step it stopped at and is dispatched. `hotfolder retry ID`
releases one at once (ops.retry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from hotfolder.clock import Clock
from hotfolder.model import State
from hotfolder.state.journal import Row, StaleTransition
from hotfolder.state.port import JournalPort
from hotfolder.transfer.delivery import ADMIN_PREFIX
from hotfolder.transfer.targets import Target

log = structlog.get_logger()

FIRST_CHECK = 5.0
MAX_CHECK = 300.0
TICK = 1.0
OPERATOR_HOLD = "held"  # error_code of `hotfolder hold`: the operator knows already


class Teller(Protocol):
    def held(self, sid: str, watch: str, reason: str) -> None: ...


@dataclass(slots=True)
class _Schedule:
    due: float
    delay: float


@dataclass(slots=True)
class AdminHolds:
    _told: set[tuple[str, str, str]] = field(default_factory=set)  # once per hold: id, why, when
    _schedule: dict[str, _Schedule] = field(default_factory=dict)
    _next_tick: float = float("-inf")

    def tick(
        self,
        journal: JournalPort,
        clock: Clock,
        targets: Mapping[str, Target],
        dispatch: Callable[[str], None],
        teller: Teller | None,
    ) -> None:
        """At most once a second: tell new holds, resume admin holds whose fault is gone.
        `targets` maps a watch name to its target."""
        now = clock.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + TICK
        held = journal.rows(frozenset({State.HELD}))
        for sid in set(self._schedule) - {r.id for r in held}:
            del self._schedule[sid]  # released, forgotten, resumed
        for row in held:
            self._tell(row, journal, teller)
            if (row.error_code or "").startswith(ADMIN_PREFIX):
                self._recheck(row, now, journal, clock, targets, dispatch)

    def _tell(self, row: Row, journal: JournalPort, teller: Teller | None) -> None:
        code = row.error_code or ""
        # One hold is one row state since its last change: held again after a retry, even
        # for the same reason, is told again.
        key = (row.id, code, row.updated_at)
        if code == OPERATOR_HOLD or key in self._told:
            return
        self._told.add(key)
        # A fleet: every node sees the hold; the journal lets one of them tell.
        if teller is not None and journal.tell_once(row.id, f"held:{code}:{row.updated_at}"):
            teller.held(row.id, row.watch, row.error_message or code)

    def _recheck(
        self,
        row: Row,
        now: float,
        journal: JournalPort,
        clock: Clock,
        targets: Mapping[str, Target],
        dispatch: Callable[[str], None],
    ) -> None:
        plan = self._schedule.get(row.id)
        if plan is None:
            # The delay grows with the holds in a row (kept in the journal), so a fault that
            # comes back at every try (a wrong password) is tried less and less often.
            holds = int((row.detail.get("hold") or {}).get("holds", 1))
            delay = min(FIRST_CHECK * 2 ** max(holds - 1, 0), MAX_CHECK)
            plan = self._schedule[row.id] = _Schedule(now + delay, delay)
        if now < plan.due:
            return
        plan.delay = min(plan.delay * 2, MAX_CHECK)
        plan.due = now + plan.delay
        target = targets.get(row.watch)
        problem = target.check() if target is not None else None
        if target is None or problem is not None:
            log.info(
                "admin fault still there; the submission stays held",
                submission_id=row.id,
                watch=row.watch,
                state=str(State.HELD),
                error=problem.message if problem else "its watch is no longer configured",
                next_check_s=plan.delay,
            )
            return
        resume = (row.detail.get("hold") or {}).get("resume") or State.READY
        try:
            journal.transition(
                row.id,
                State(resume),
                clock.now(),
                note="the admin fault looks fixed: going on by itself",
            )
        except StaleTransition:
            return  # an operator got there first
        log.info(
            "admin fault gone; resuming",
            submission_id=row.id,
            watch=row.watch,
            state=str(resume),
        )
        dispatch(row.id)
