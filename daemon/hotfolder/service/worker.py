"""One transfer on a worker thread: deliver, then hand what happened to the outcomes. Nothing
that goes wrong here may take the daemon down: the journal keeps the state, and the next
start resumes from it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from hotfolder.clock import Clock
from hotfolder.config.settings import WatchConfig
from hotfolder.service.fleet import Fleet
from hotfolder.service.in_force import Current
from hotfolder.service.outcomes import Outcomes
from hotfolder.state.journal import Row, StaleTransition
from hotfolder.state.port import JournalPort
from hotfolder.transfer.delivery import Cancelled, Delivery, Paused, RetryPolicy

log = structlog.get_logger()


@dataclass(slots=True)
class Worker:
    journal: JournalPort
    clock: Clock
    current: Current
    outcomes: Outcomes
    retry: RetryPolicy  # unless the target's `retry:` says otherwise
    cancel: threading.Event  # set by shutdown once the grace period is over
    fleet: Fleet | None = None  # several workstations: a step starts only under a claim

    def deliver(self, watch: WatchConfig, row: Row) -> None:
        if self.fleet is None:
            self._deliver(watch, row, self.journal)
            return
        with self.fleet.claimed(row.id) as claimed:  # service.fleet: claim, lease, fence
            fresh = claimed.get(row.id) if claimed is not None else None
            if claimed is None or fresh is None:
                log.info("claimed by another node", submission_id=row.id, watch=row.watch)
                return
            self._deliver(watch, fresh, claimed)

    def _deliver(self, watch: WatchConfig, row: Row, journal: JournalPort) -> None:
        in_force = self.current()
        delivery = Delivery(
            watch,
            in_force.target_of(watch),
            journal,
            self.clock,
            self.cancel,
            in_force.retry(watch, self.retry),
        )
        try:
            self.outcomes.delivered(watch, row, delivery.run(row))
        except Cancelled:
            log.warning(
                "transfer interrupted by shutdown; it resumes on next start",
                submission_id=row.id,
                watch=row.watch,
            )
        except Paused as paused:  # ready again: it goes on when a window opens
            log.info(
                "transfer paused at its window's end",
                submission_id=row.id,
                watch=row.watch,
                reason=str(paused),
            )
        except StaleTransition as err:
            log.warning("submission changed hands", submission_id=row.id, error=str(err))
        except Exception:
            # One bad submission must not take the daemon down: log it and leave the journal
            # state, which the next start resumes from.
            log.exception("delivery crashed", submission_id=row.id, watch=row.watch)
