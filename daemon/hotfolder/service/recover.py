"""On start, act on what the last run left: `recovery.resume` decides each row's next step
(pure), this commits the transition and dispatches, finishes or tells of a hold."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import structlog

from hotfolder.clock import Clock
from hotfolder.model import IN_FLIGHT, Problem, State
from hotfolder.service.in_force import InForce
from hotfolder.service.outcomes import Outcomes, log_ended
from hotfolder.state import recovery
from hotfolder.state.port import JournalPort
from hotfolder.transfer.delivery import manifest_session

log = structlog.get_logger()


def act_on_the_last_run(
    journal: JournalPort,
    in_force: InForce,
    clock: Clock,
    dispatch: Callable[[str], None],
    outcomes: Outcomes,
) -> None:
    for row in journal.rows(frozenset({State.READY, *IN_FLIGHT, State.COMPLETE})):
        watch = in_force.watch(row.watch)
        if watch is None:
            continue
        session = manifest_session(row.submission(), watch.path)
        step = recovery.resume(row, partial(in_force.target_of(watch).delivered, session))
        if step is None:
            continue
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
