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
from hotfolder.state.journal_file import JournalUnavailable
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
        # The dispatcher claimed it before its first step; the claim is given back here,
        # once the delivery and what follows it (archive, report) are over.
        try:
            claimed = self.fleet.holding(row.id)
            if claimed is None:
                log.warning("claim lost before the delivery began", submission_id=row.id)
                return
            self._deliver(watch, row, claimed, self.fleet.stop_event(row.id))
        finally:
            self.fleet.give_back(row.id)

    def _deliver(
        self,
        watch: WatchConfig,
        row: Row,
        journal: JournalPort,
        stop: threading.Event | None = None,
    ) -> None:
        """`stop`: a fleet's claim's, set when it is lost or at shutdown (else `cancel`)."""
        in_force = self.current()
        delivery = Delivery(
            watch,
            in_force.target_of(watch),
            journal,
            self.clock,
            stop or self.cancel,
            in_force.retry(watch, self.retry),
        )
        try:
            self.outcomes.delivered(watch, row, delivery.run(row), journal)
        except Cancelled:
            if self.fleet is not None and self.fleet.claim_of(row.id) is None:
                log.warning(
                    "transfer stopped: another node took the submission over",
                    submission_id=row.id,
                    watch=row.watch,
                )
                return
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
        except JournalUnavailable as err:
            # The shared journal went away mid-delivery: no step starts without it. The row
            # keeps its state; once the lease runs out, a node (this one too) takes it over
            # and decides by the evidence, as after a crash.
            log.warning(
                "delivery stopped: the journal cannot be reached",
                submission_id=row.id,
                watch=row.watch,
                error=str(err),
            )
        except Exception:
            # One bad submission must not take the daemon down: log it and leave the journal
            # state, which the next start resumes from.
            log.exception("delivery crashed", submission_id=row.id, watch=row.watch)
