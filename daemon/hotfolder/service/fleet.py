"""Several workstations on one drop folder (issue 13): which journal the daemon keeps, and, in a
fleet, the claim a node holds on each submission it works on.

- `open_journal`: SQLite in state_dir unless the config has `journal: {url: ...}`; then the
  shared PostgreSQL journal (state/pg_journal), and a `Fleet` for this node.
- `Fleet.take(sid)`: the dispatcher claims a submission before its first step (ready ->
  queued) and the worker gives it back when the delivery (and what follows it) is over.
  While held, a heartbeat thread renews the lease; a claim it cannot renew is lost, and the
  fenced writes refuse it. `Fleet.orphans()` finds work a dead node left mid-way.
- `ClaimedJournal`: what a step writes through while it holds the claim. Its state changes
  are fenced (only the claim's holder may make them; reaching complete records this node as
  the one that delivered), and the start of the manifest session additionally needs a live
  lease by the database's clock, checked in the same transaction: a node whose lease was
  taken over can never start a manifest session.
- `FleetEvidence`: the manifest gate's attempt marker and the sessions' receipts, in the
  shared journal, so a takeover decides by the same evidence the dead node would have.

SQLite stays the default and nothing here runs without `journal:`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import structlog

from hotfolder import __version__
from hotfolder.clock import Clock
from hotfolder.config.settings import Config
from hotfolder.model import IN_FLIGHT, ManifestFormat, Problem, State, Submission
from hotfolder.state.journal import Journal, StaleTransition
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.port import JournalPort
from hotfolder.state.rows import JournalHealth, Row

if TYPE_CHECKING:
    from hotfolder.state.pg_journal import Claim, PgJournal, Wakeups

log = structlog.get_logger()

JOURNAL_FILE = "journal.sqlite"


def open_journal(config: Config, clock: Clock) -> tuple[JournalPort, Fleet | None]:
    """The journal the config names, and the fleet this node is in (None: a single
    workstation, SQLite). Raises JournalError / JournalUnavailable if PostgreSQL cannot be
    opened: a node that cannot reach the shared journal takes no work."""
    if config.journal is None:
        return Journal(config.state_dir / JOURNAL_FILE), None
    # Imported only here: a single workstation never loads the PostgreSQL driver.
    from hotfolder.state.pg_journal import FleetSettings, PgJournal  # noqa: PLC0415

    given = config.journal
    settings = FleetSettings.of(given)
    lease = timedelta(seconds=given.lease_seconds)
    journal = PgJournal.open(settings, clock=clock, register=False, lease=lease)
    try:
        journal.register(__version__)
    except BaseException:
        journal.close()
        raise
    log.info("fleet journal", journal=journal.where, node=journal.node)
    return journal, Fleet(journal, clock)


class Fleet:
    """This node's claims: taken before a step, renewed by a heartbeat while held, given back
    after. The heartbeat also tells `hotfolder nodes` that this node is alive."""

    def __init__(self, journal: PgJournal, clock: Clock) -> None:
        self.journal, self.clock = journal, clock
        self.every = journal.lease.total_seconds() / 3  # two missed beats still keep it
        self._held: dict[str, Claim] = {}
        self._taking: set[str] = set()
        self._stops: dict[str, threading.Event] = {}  # set when a held claim is lost
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wakeups: Wakeups | None = None

    @property
    def node(self) -> str:
        return self.journal.node

    def take(self, sid: str) -> ClaimedJournal | None:
        """Claim `sid` for this node and hold it (renewed by the heartbeat) until
        `give_back`; None: another node's live lease holds it, or the database cannot be
        reached (no new step starts then), or this node holds it for another step already
        (claiming again would bump the fence under that step's feet)."""
        with self._lock:
            if sid in self._held or sid in self._taking:
                return None
            self._taking.add(sid)  # the dispatcher and a takeover may ask at once
        try:
            claim = self.journal.claim(sid, self.clock.now())
        except JournalUnavailable as err:
            log.warning("cannot claim: journal unreachable", submission_id=sid, error=str(err))
            claim = None
        with self._lock:
            self._taking.discard(sid)
            if claim is not None:
                self._held[sid] = claim
                self._stops[sid] = threading.Event()
        if claim is None:
            return None
        if claim.taken_over_from is not None:
            log.warning(
                "taking over a submission", submission_id=sid, from_node=claim.taken_over_from
            )
        return ClaimedJournal(self.journal, self, sid)

    def claim_step(self, sid: str, states: frozenset[State]) -> tuple[ClaimedJournal, Row] | None:
        """Take `sid` for a step that starts from one of `states`, with its row as the
        claim found it; None (and nothing held) if it is not ours or has moved on."""
        claimed = self.take(sid)
        if claimed is None:
            return None
        try:
            row = claimed.get(sid)
        except JournalUnavailable:
            row = None
        if row is None or row.state not in states:
            self.give_back(sid)
            return None
        return claimed, row

    def holding(self, sid: str) -> ClaimedJournal | None:
        """The claimed journal for `sid` while this node still holds it."""
        return ClaimedJournal(self.journal, self, sid) if self.claim_of(sid) else None

    def claim_of(self, sid: str) -> Claim | None:
        with self._lock:
            return self._held.get(sid)

    def held_claim(self, sid: str) -> Claim:
        """This node's claim on `sid`, as the heartbeat last renewed it; StaleTransition if
        it holds none (lost, or given back): no fenced write may go on."""
        claim = self.claim_of(sid)
        if claim is None:
            raise StaleTransition(f"{sid}: this node no longer holds it")
        return claim

    def stop_event(self, sid: str) -> threading.Event:
        """Set when this node loses its claim on `sid` (or at shutdown, `stop_all`): the
        delivery under way stops, so a node that lost its lease does not go on writing the
        destination beside the node that took over."""
        with self._lock:
            return self._stops.setdefault(sid, threading.Event())

    def stop_all(self) -> None:
        with self._lock:
            stops = list(self._stops.values())
        for stop in stops:
            stop.set()

    def give_back(self, sid: str) -> None:
        """The step is over (or cannot go on here): other nodes may claim it now."""
        with self._lock:
            claim = self._held.pop(sid, None)
            self._stops.pop(sid, None)
        if claim is None:
            return
        try:
            self.journal.release(claim)
        except JournalUnavailable as err:  # the lease runs out by itself
            log.warning("cannot give the claim back", submission_id=sid, error=str(err))

    def orphans(self, limit: int = 50) -> list[str]:
        """Submissions left mid-way that no live node holds (their node died, or this one
        restarted): each is claimed and decided by evidence, as a restart would."""
        with self._lock:
            held = set(self._held)
        try:
            found = self.journal.claimable(IN_FLIGHT, limit)
        except JournalUnavailable:
            return []
        return [sid for sid in found if sid not in held]

    def held(self) -> tuple[Claim, ...]:
        with self._lock:
            return tuple(self._held.values())

    def beat(self) -> None:
        """Renew this node's heartbeat and every lease it holds; a claim not renewed was
        taken over (its fenced writes will fail) and is dropped."""
        held = self.held()
        try:
            renewed = {c.sid: c for c in self.journal.heartbeat(held)}
        except JournalUnavailable as err:
            log.warning("heartbeat failed: journal unreachable", error=str(err))
            return
        with self._lock:
            for claim in held:
                if claim.sid not in renewed and self._held.get(claim.sid) == claim:
                    log.error("claim lost to another node", submission_id=claim.sid)
                    del self._held[claim.sid]
                    self._stops.get(claim.sid, threading.Event()).set()
                elif claim.sid in renewed and self._held.get(claim.sid) == claim:
                    # Only the claim it renewed: one taken again meanwhile is newer.
                    self._held[claim.sid] = renewed[claim.sid]

    def counts(self) -> dict[State, int]:
        """This node's own work (what it delivered or holds), for STATUS=."""
        return self.journal.counts(node=self.node)

    # -- the heartbeat thread: runs until after the last transfer ended ----------------------

    def start(self, on_wake: Callable[[], None] | None = None) -> None:
        """The heartbeat; with `on_wake`, also a listener that calls it when another node
        made work claimable (a hint that saves a poll interval: polling stays the rule)."""
        self._threads.append(threading.Thread(target=self._beat, name="fleet-heartbeat"))
        if on_wake is not None:
            wakeups = self.journal.wakeups()
            listen = threading.Thread(target=self._listen, args=(wakeups, on_wake))
            listen.name = "fleet-wakeups"
            self._threads.append(listen)
            self._wakeups = wakeups
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()

    def _listen(self, wakeups: Wakeups, on_wake: Callable[[], None]) -> None:
        while not self._stop.is_set():
            if wakeups.wait(1.0):
                on_wake()

    def stop(self) -> None:
        self._stop.set()
        if self._wakeups is not None:
            self._wakeups.close()
        for thread in self._threads:
            thread.join()
        try:
            self.journal.retire()  # its name is free for its own restart at once
        except JournalUnavailable as err:
            log.warning("cannot retire this node; its name is free after a lease", error=str(err))


class FleetEvidence:
    """A manifest session's evidence kept in the shared journal (transfer.targets.base
    SharedEvidence), so that whichever node takes a submission over decides exactly as the
    node that sent it would have. The attempt marker is fenced: a node that lost its claim
    (or whose lease ran out) cannot open the manifest's gate."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def mark_attempt(self, sid: str, session: str) -> None:
        self.fleet.journal.mark_attempt(self.fleet.held_claim(sid), session)

    def unmark_attempt(self, sid: str, session: str) -> None:
        self.fleet.journal.unmark_attempt(self.fleet.held_claim(sid), session)

    def put_receipt(self, sid: str, session: str, body: str) -> None:
        claim = self.fleet.claim_of(sid)
        self.fleet.journal.put_receipt(sid, session, body, claim.fence if claim else 0)

    def attempted(self, sid: str, session: str) -> bool:
        return self.fleet.journal.attempted(sid, session)

    def receipt(self, sid: str, session: str) -> str | None:
        return self.fleet.journal.receipt(sid, session)


class ClaimedJournal:
    """The journal as a step holding `sid`'s claim writes it: that submission's state changes
    are fenced (with the claim as the heartbeat last renewed it); everything else is the
    fleet journal's."""

    def __init__(self, journal: PgJournal, fleet: Fleet, sid: str) -> None:
        self.journal, self.fleet, self.sid = journal, fleet, sid

    @property
    def claim(self) -> Claim:
        return self.fleet.held_claim(self.sid)

    def transition(
        self,
        sid: str,
        to: State,
        now: datetime,
        *,
        note: str = "",
        problems: tuple[Problem, ...] = (),
        **fields: Any,
    ) -> None:
        if sid != self.sid:
            self.journal.transition(sid, to, now, note=note, problems=problems, **fields)
        elif to is State.SENDING_MANIFEST and not fields and not problems:
            self.journal.start_manifest_session(self.claim, now, note)
        else:
            live = to is State.SENDING_MANIFEST
            self.journal.transition_fenced(
                self.claim, to, now, note=note, problems=problems, live=live, **fields
            )

    # -- the rest, as the fleet journal answers it ------------------------------------------

    @property
    def path(self) -> Path | str:
        return self.journal.path

    def healthy(self) -> JournalHealth:
        return self.journal.healthy()

    def close(self) -> None:
        """Not ours to close: the daemon closes the fleet journal."""

    def get(self, sid: str) -> Row | None:
        return self.journal.get(sid)

    def state_of(self, sid: str) -> State | None:
        return self.journal.state_of(sid)

    def is_settled(self, sid: str) -> bool:
        return self.journal.is_settled(sid)

    def rows(
        self, states: frozenset[State] | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[Row]:
        return self.journal.rows(states, watch, limit)

    def counts(self) -> dict[State, int]:
        return self.journal.counts()

    def ended_badly_since(self, since: datetime) -> list[str]:
        return self.journal.ended_badly_since(since)

    def history(self, sid: str) -> list[tuple[str, str, str]]:
        return self.journal.history(sid)

    def latest_generation(self, base: str) -> Row | None:
        return self.journal.latest_generation(base)

    def mark_manifest_removed(self, sid: str) -> None:
        self.journal.mark_manifest_removed(sid)

    def record_pending(
        self, sid: str, watch: str, manifest: PurePosixPath, now: datetime, detail: dict[str, Any]
    ) -> bool:
        return self.journal.record_pending(sid, watch, manifest, now, detail)

    def forget_pending(self, sid: str) -> None:
        self.journal.forget_pending(sid)

    def record_ready(
        self, sub: Submission, now: datetime, detail: dict[str, Any] | None = None
    ) -> bool | None:
        return self.journal.record_ready(sub, now, detail)

    def record_failed(
        self,
        sid: str,
        watch: str,
        manifest: PurePosixPath,
        problems: tuple[Problem, ...],
        now: datetime,
        fmt: ManifestFormat | None = None,
        owner: str | None = None,
    ) -> bool:
        return self.journal.record_failed(sid, watch, manifest, problems, now, fmt, owner)

    def forget(self, sid: str) -> bool:
        return self.journal.forget(sid)

    def record_attempt(
        self, sid: str, now: datetime, attempt: int, code: str, message: str
    ) -> None:
        self.journal.record_attempt(sid, now, attempt, code, message)

    def progress(self, sid: str, bytes_done: int) -> None:
        self.journal.progress(sid, bytes_done)

    def mark_postprocessed(self, sid: str, now: datetime, note: str) -> None:
        self.journal.mark_postprocessed(sid, now, note)

    def record_verify(
        self, sid: str, result: str, assets: dict[str, str], error: str | None = None
    ) -> None:
        self.journal.record_verify(sid, result, assets, error)

    def tell_once(self, sid: str, about: str) -> bool:
        return self.journal.tell_once(sid, about)

    def forget_evidence(self, sid: str) -> None:
        self.journal.forget_evidence(sid)
