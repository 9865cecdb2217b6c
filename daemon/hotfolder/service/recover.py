"""Act on what the last run left (`recovery.resume` decides each row's next step, pure; this
commits the transition and dispatches, finishes or tells of a hold). On a single
workstation that is every unfinished row, once, at start. In a fleet (issue 13) it is each
submission a dead node left mid-way (or this node, before it restarted): claimed first, so
exactly one node decides it, by the evidence in the shared journal, as the dead node would
have."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import structlog

from hotfolder.clock import Clock
from hotfolder.model import IN_FLIGHT, Problem, State
from hotfolder.service.fleet import Fleet
from hotfolder.service.in_force import InForce
from hotfolder.service.outcomes import Outcomes, log_ended
from hotfolder.state import recovery
from hotfolder.state.journal import Row, StaleTransition
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.port import JournalPort
from hotfolder.transfer.delivery import manifest_session

log = structlog.get_logger()

Dispatch = Callable[[str], None]


def act_on_the_last_run(
    journal: JournalPort,
    in_force: InForce,
    clock: Clock,
    dispatch: Dispatch,
    outcomes: Outcomes,
) -> None:
    """At a single workstation's start. A fleet node needs nothing of its own: at every
    turn the dispatcher picks up what is ready, `take_over` what a node left mid-way and
    `finish_own` what this node delivered but did not archive."""
    for row in journal.rows(frozenset({State.READY, *IN_FLIGHT, State.COMPLETE})):
        act_on(row, journal, in_force, clock, dispatch, outcomes)


def take_over(
    fleet: Fleet,
    sid: str,
    in_force: InForce,
    clock: Clock,
    dispatch: Dispatch,
    outcomes: Outcomes,
) -> None:
    """Claim `sid` (left mid-way by a node whose lease ran out), decide its next step by the
    shared evidence, commit it fenced, give the claim back and queue what is left; the next
    step is claimed again like any other, by whichever node has a free worker."""
    claimed = fleet.take(sid)
    if claimed is None:
        return
    left: list[str] = []
    try:
        row = claimed.get(sid)
        if row is not None and row.state in IN_FLIGHT:
            act_on(row, claimed, in_force, clock, left.append, outcomes)
    except (StaleTransition, JournalUnavailable) as err:
        log.warning("takeover stopped", submission_id=sid, error=str(err))
    finally:
        fleet.give_back(sid)
    for queued in left:
        dispatch(queued)


def finish_own(journal: JournalPort, sid: str, in_force: InForce, outcomes: Outcomes) -> None:
    """Archive or delete what this node delivered and has not yet (see PgClaims.unfinished)."""
    row = journal.get(sid)
    watch = in_force.watch(row.watch) if row is not None else None
    if row is None or watch is None or row.state is not State.COMPLETE or row.postprocessed:
        return
    log.info("finishing a delivered submission", submission_id=sid, watch=row.watch)
    outcomes.finish(watch, row)


def act_on(
    row: Row,
    journal: JournalPort,
    in_force: InForce,
    clock: Clock,
    dispatch: Dispatch,
    outcomes: Outcomes,
) -> None:
    watch = in_force.watch(row.watch)
    if watch is None:
        return
    session = manifest_session(row.submission(), watch.path)
    step = recovery.resume(row, partial(in_force.target_of(watch).delivered, session))
    if step is None:
        return
    if step.to is not None:
        codes: dict[str, Any] = {"error_code": step.error_code, "error_message": step.note}
        journal.transition(
            row.id,
            step.to,
            clock.now(),
            note=step.note,
            **(codes if step.error_code else {}),
        )
    if step.then is recovery.Then.DISPATCH:
        log.info(
            "resuming submission",
            submission_id=row.id,
            watch=row.watch,
            state=str(step.to or row.state),
        )
        dispatch(row.id)
    elif step.then is recovery.Then.FINISH:
        outcomes.finish(watch, journal.get(row.id) or row)
    else:
        hint = f"check the destination, then run: hotfolder retry {row.id}"
        why = Problem(step.error_code or "", f"{step.note}; {hint}")
        log_ended(row.id, row.watch, State.HELD, why, len(row.files), row.bytes_total, None)
