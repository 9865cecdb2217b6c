"""Which submission runs when: a pool of workers, what runs and what waits (space, quota, a
lost journal), the order ready work starts in (priority, watches taking turns, a target's
transfer windows and max_sessions: issue 14), operator releases, admin holds coming back by
themselves, and what the last run left (recovery decides, service.recover acts). The main
loop turns it; watch threads and recovery call `dispatch`.
"""

from __future__ import annotations

import threading
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import structlog

from hotfolder.clock import Clock
from hotfolder.config.settings import WatchConfig
from hotfolder.model import IN_FLIGHT, State
from hotfolder.service.admission import Admission, Verdict, admit, low_on_space
from hotfolder.service.fleet import Fleet
from hotfolder.service.in_force import Current
from hotfolder.service.outcomes import Outcomes, Rejection
from hotfolder.service.ready_starts import ReadyStarts, priority_of
from hotfolder.service.recover import act_on_the_last_run, finish_own, take_over
from hotfolder.state.journal import JournalHealth, Row, StaleTransition
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.port import JournalPort
from hotfolder.transfer.faults import AdminHolds
from hotfolder.transfer.ready_queue import ReadyQueue

#: priority_of is read here by callers that knew it here first.
__all__ = ["EVERY", "RELEASES_PER_TURN", "Deliverer", "Dispatcher", "priority_of"]

log = structlog.get_logger()


class Deliverer(Protocol):
    """Runs one submission on a pool thread (service.worker.Worker; a fake in tests)."""

    cancel: threading.Event  # set once shutdown's grace is over

    def deliver(self, watch: WatchConfig, row: Row) -> None: ...


EVERY = 1.0  # the journal's health and operator releases are looked at this often
RELEASES_PER_TURN = 50


class Dispatcher(ReadyStarts):
    """Workers, admission, reaping, releases and recovery; the start order is ReadyStarts'."""

    def __init__(
        self,
        journal: JournalPort,
        current: Current,
        clock: Clock,
        outcomes: Outcomes,
        worker: Deliverer,
        wake: threading.Event,
        fleet: Fleet | None = None,
    ) -> None:
        self.journal, self.current, self.clock = journal, current, clock
        self.outcomes, self.worker, self.wake = outcomes, worker, wake
        self.fleet = fleet  # several workstations (issue 13): every first step is claimed
        self.slots = current().config.workers
        self.pool = ThreadPoolExecutor(self.slots, thread_name_prefix="transfer")
        self.lock = threading.RLock()  # running, deferred, queue: watch threads dispatch too
        self.running: dict[str, Future[None]] = {}
        # Waiting for a worker, a window or a session of their target (issue 14): the pool
        # never queues, so the order is the ReadyQueue's, not the pool's first-in first-out.
        self.queue = ReadyQueue()
        self.running_target: dict[str, str] = {}  # sid -> target, for max_sessions
        self.deferred: set[str] = set()  # ready, waiting for space, quota or the journal
        self.space_low = False
        self.journal_lost: str | None = None  # why the journal file is not ours, if it is not
        self.holds = AdminHolds()
        self._next_look = float("-inf")
        self._next_takeover = float("-inf")

    def turn(self) -> None:
        """One turn of the main loop: reap, resume, and once a second look at the journal."""
        self.reap()
        self._resume_if_space()
        self.holds.tick(
            self.journal,
            self.clock,
            self.current().targets_by_watch(),
            self.dispatch,
            self.outcomes.alerts,
        )
        now = self.clock.monotonic()
        if now >= self._next_look:
            self._next_look = now + EVERY
            self._check_journal()
            if self.journal_lost is None:
                self._pick_up_released()
                self._take_over_orphans()
            with self.lock:
                self._start_ready()  # a window may have opened since the last look

    def look_soon(self) -> None:
        """Another node made work claimable (a fleet's wake-up): look at the journal now."""
        self._next_look = float("-inf")
        self.wake.set()

    def idle(self) -> bool:
        """Nothing runs or waits that could go now (work waiting for a window is not
        counted: `--once` leaves it ready for the next run)."""
        with self.lock:
            startable = any(self._may_start(item) for item in self.queue.order())
            return not self.running and not self.deferred and not startable

    # -- starting work ----------------------------------------------------------------------

    def _dispatch_locked(self, sid: str) -> None:
        """Start `sid` now (the queue chose it): admission, then a worker."""
        row = self.journal.get(sid)
        if row is None or sid in self.running:
            return
        watch = self.current().watch(row.watch)
        if watch is None:
            log.warning(
                "submission's watch is no longer configured", submission_id=sid, watch=row.watch
            )
            return
        journal: JournalPort = self.journal
        if self.fleet is not None:  # several workstations: the first step under a claim
            taken = self.fleet.claim_step(sid, frozenset({State.READY, State.MEDIA_SENT}))
            if taken is None:
                return  # another node's, or moved on (a takeover's, see _take_over_orphans)
            journal, row = taken
        try:
            go = self._queued(watch, row, journal)
        except BaseException:
            self._give_back(sid)  # a claim kept by a failed call would be renewed forever
            raise
        if go is None:
            self._give_back(sid)
            return
        future = self.pool.submit(self.worker.deliver, watch, go)
        future.add_done_callback(lambda _f: self.wake.set())  # reap it, maybe free quota
        self.running[sid] = future
        self.running_target[sid] = watch.target

    def _queued(self, watch: WatchConfig, row: Row, journal: JournalPort) -> Row | None:
        """The row to hand a worker: a ready one admitted and moved to queued; None if it
        waits (space, quota) or was rejected."""
        if row.state is not State.READY:
            return row  # resumed past its first step (recovery, a takeover)
        if not self._admitted(watch, row, self._admission(watch, row), journal):
            return None
        try:
            journal.transition(row.id, State.QUEUED, self.clock.now())
        except (StaleTransition, JournalUnavailable) as err:
            log.warning("cannot queue it", submission_id=row.id, error=str(err))
            return None
        return journal.get(row.id)

    def _give_back(self, sid: str) -> None:
        if self.fleet is not None:
            self.fleet.give_back(sid)

    def _admission(self, watch: WatchConfig, row: Row) -> Admission:
        """Gather the facts for the pure verdict."""
        in_force = self.current()
        same = in_force.sharing_target(watch)
        in_flight = sum(r.bytes_total for r in self.journal.rows(IN_FLIGHT) if r.watch in same)
        return admit(
            row.bytes_total,
            in_flight,
            in_force.quota(watch),
            space_low=not self._space_ok(),
            journal_lost=self.journal_lost is not None,
        )

    def _admitted(
        self, watch: WatchConfig, row: Row, admission: Admission, journal: JournalPort
    ) -> bool:
        """Act on the verdict: go, wait (said once), or reject for good (through `journal`:
        a fleet's claim, so a node that lost it cannot fail what another node sends)."""
        if admission.verdict is Verdict.GO:
            self.deferred.discard(row.id)
            return True
        if admission.verdict is Verdict.WAIT_QUOTA and row.id not in self.deferred:
            log.info(
                "waiting for quota",
                submission_id=row.id,
                watch=row.watch,
                state=str(State.READY),
                bytes=row.bytes_total,
            )
        if admission.waits:
            self.deferred.add(row.id)
            return False
        self.deferred.discard(row.id)
        if admission.problem is not None:
            self.outcomes.reject(watch, Rejection.of_row(row, admission.problem), journal)
        return False

    def _space_ok(self) -> bool:
        """New work waits while the state or an archive folder is nearly full; work in
        flight goes on (it needs little), and the journal stays whole (SQLite)."""
        config = self.current().config
        folders = {
            config.state_dir,
            *(w.archive_dir for w in config.watches if w.after_success == "archive"),
        }
        low = low_on_space(folders, config.min_free_bytes)
        if low and not self.space_low:
            log.error(
                "disk nearly full: new work paused until space returns",
                free_bytes=low,
                min_free_bytes=config.min_free_bytes,
            )
        elif not low and self.space_low:
            log.info("disk space is back: resuming")
        self.space_low = bool(low)
        return not low

    def _redispatch_deferred(self) -> None:
        for sid in sorted(self.deferred):
            self.deferred.discard(sid)
            self._queue_locked(sid)
        self._start_ready()

    def _resume_if_space(self) -> None:
        with self.lock:
            if self.space_low and self.deferred and self._space_ok():
                self._redispatch_deferred()

    # -- what ended, what came back ---------------------------------------------------------

    def reap(self) -> None:
        """Forget finished transfers; what waited for their quota may go now."""
        with self.lock:
            finished = [sid for sid, future in self.running.items() if future.done()]
            for sid in finished:
                del self.running[sid]
                self.running_target.pop(sid, None)
                self._requeue_paused(sid)
            if finished:
                self._redispatch_deferred()

    def _pick_up_released(self) -> None:
        """Submissions an operator released (`hotfolder retry`) come back as ready; in a
        fleet, so does what another node made ready (any node with a free worker claims it)."""
        with self.lock:
            busy = set(self.running) | self.deferred
        for row in self.journal.rows(frozenset({State.READY}), limit=RELEASES_PER_TURN):
            if row.id not in busy and row.id not in self.queue:
                if self.fleet is None:
                    log.info(
                        "released by an operator",
                        submission_id=row.id,
                        watch=row.watch,
                        state=str(State.READY),
                    )
                self.dispatch(row.id)

    def _take_over_orphans(self) -> None:
        """A fleet: work a dead node left mid-way (recover.take_over), and what this node
        delivered but did not archive (recover.finish_own). Both change only as a lease runs
        out, so they are looked for once a heartbeat interval, not at every turn."""
        now = self.clock.monotonic()
        if self.fleet is None or now < self._next_takeover:
            return
        self._next_takeover = now + self.fleet.every
        for sid in self._not_running(self.fleet.orphans()):
            take_over(self.fleet, sid, self.current(), self.clock, self.dispatch, self.outcomes)
        for sid in self._not_running(self.fleet.journal.unfinished()):
            finish_own(self.journal, sid, self.current(), self.outcomes)

    def _not_running(self, sids: list[str]) -> list[str]:
        with self.lock:
            return [sid for sid in sids if sid not in self.running]

    def _check_journal(self) -> None:
        """A journal deleted or replaced under us would take every later decision into a
        file nobody reads: nothing new is decided or started until it is back."""
        health = self.journal.healthy()
        lost = None if health is JournalHealth.OK else str(health)
        if lost == self.journal_lost:
            return
        self.journal_lost = lost
        if lost is None:
            log.info("the journal is back; resuming", path=str(self.journal.path))
            with self.lock:
                self._redispatch_deferred()
        elif self.fleet is not None:  # a database that does not answer: it retries
            log.error(
                "the journal's database cannot be reached: new work paused",
                path=str(self.journal.path),
                hint="hotfolder reconnects by itself; check that PostgreSQL runs and "
                "this node may connect",
            )
        else:
            log.error(
                "the journal file is gone: new work paused",
                path=str(self.journal.path),
                found=lost,
                hint="put the file back (or restart hotfolder to start a new journal; "
                "kept files are recognised by the markers in the state folder)",
            )

    def recover(self) -> None:
        """Act on what the last run left (recover.act_on_the_last_run); a fleet's turns do
        it (_pick_up_released, _take_over_orphans)."""
        if self.fleet is None:
            act_on_the_last_run(
                self.journal, self.current(), self.clock, self.dispatch, self.outcomes
            )

    def shutdown(self, grace: float) -> None:
        """Warm stop: running transfers get `grace` seconds to finish, then they are
        cancelled; the journal keeps their state and the next start resumes them."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            running = list(self.running.values())
        if running:
            log.info("waiting for running transfers", count=len(running), grace_seconds=grace)
            futures.wait(running, timeout=grace)
        self.worker.cancel.set()
        if self.fleet is not None:
            self.fleet.stop_all()  # a fleet's deliveries stop on their claims' events
        self.pool.shutdown(wait=True)
