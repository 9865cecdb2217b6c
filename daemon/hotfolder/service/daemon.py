"""The daemon: wires the rooms, runs the main loop, reloads, stops, and talks to systemd.

    watch loops (a thread each: intake -> tracker)  --decisions-->  outcomes (journal first)
    outcomes --ready--> dispatcher (admission, workers) --delivery ended--> outcomes

The caller's thread turns the dispatcher (reaping, releases, holds), reports to systemd and
reloads; it never touches a tracker (it reads each watch's published snapshot).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from hotfolder.after.alerts import Alerts
from hotfolder.after.verify import Verifier
from hotfolder.assemble.tracker import FileSystem, LocalFileSystem, WatchTracker
from hotfolder.clock import Clock, SystemClock
from hotfolder.config.settings import Config
from hotfolder.intake.watch import Watcher
from hotfolder.metrics import COUNTERS
from hotfolder.model import State
from hotfolder.service.control_socket import Control
from hotfolder.service.dispatcher import Dispatcher
from hotfolder.service.fleet import JOURNAL_FILE, Fleet, FleetEvidence, open_journal
from hotfolder.service.in_force import InForce, reread
from hotfolder.service.outcomes import Outcomes
from hotfolder.service.sd_notify import Notifier, status_line
from hotfolder.service.watch_loop import WatchLoop, WatchSnapshot, Wiring, settings_of
from hotfolder.service.worker import Worker
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.state.known import JournalKnown
from hotfolder.state.port import JournalPort
from hotfolder.transfer.delivery import RetryPolicy

log = structlog.get_logger()

JOURNAL_WAIT_MAX = 30.0  # seconds between tries to reach a fleet's database at start
JOURNAL_WAIT_SAID_EVERY = 60.0

MAX_SLEEP = 1.0
WATCH_JOIN_TIMEOUT = 10.0
REPORT_EVERY = 1.0
__all__ = ["JOURNAL_FILE", "Daemon"]  # JOURNAL_FILE: the CLI reads it from here


@dataclass(slots=True)
class Daemon:
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    fs: FileSystem = field(default_factory=LocalFileSystem)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    use_observer: bool = True
    shutdown_grace: float = 30.0
    notifier: Notifier = field(default_factory=Notifier)
    stop_event: threading.Event = field(default_factory=threading.Event)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    journal: JournalPort = field(init=False)
    fleet: Fleet | None = field(init=False, default=None)  # with `journal:` (issue 13)
    dispatcher: Dispatcher = field(init=False)
    watcher: Watcher | None = field(init=False, default=None)
    _in_force: InForce = field(init=False)
    _loops: dict[str, WatchLoop] = field(init=False, default_factory=dict)
    _helpers: list[Verifier | Alerts] = field(init=False, default_factory=list)
    _wake: threading.Event = field(default_factory=threading.Event)
    _reload_requested: threading.Event = field(default_factory=threading.Event)
    _last_report: float = float("-inf")
    _control: Control = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.journal, self.fleet = self._open_journal()
        known = JournalKnown(self.journal, cfg.state_dir)
        shared = FleetEvidence(self.fleet) if self.fleet is not None else None
        self._in_force = InForce.build(cfg, self.clock, shared=shared)
        verifier = (
            Verifier(self.journal, cfg.backlot, self.clock, self.stop_event)
            if cfg.backlot
            else None
        )
        alerts = Alerts.from_config(cfg.notifications, self.clock, self.stop_event, cfg)
        self._helpers = [h for h in (verifier, alerts) if h is not None]
        current = self.in_force
        outcomes = Outcomes(self.journal, known, self.clock, current, alerts, verifier)
        worker = Worker(self.journal, self.clock, current, outcomes, self.retry, self.cancel_event)
        worker.fleet = self.fleet
        self.dispatcher = Dispatcher(
            self.journal, current, self.clock, outcomes, worker, self._wake, self.fleet
        )
        paused = lambda: self.dispatcher.journal_lost is not None  # noqa: E731
        wiring = Wiring(
            self.clock,
            self.stop_event,
            outcomes,
            self.dispatcher.dispatch,
            paused,
            self.use_observer,
        )
        for w in cfg.watches:
            tracker = WatchTracker(settings_of(w, self.fleet is not None), self.fs, known)
            self._loops[w.name] = WatchLoop(w, tracker, wiring)
        self._control = Control(cfg.state_dir, self.in_force)

    def _open_journal(self) -> tuple[JournalPort, Fleet | None]:
        """The journal; a fleet's database that cannot be reached is waited for (with a
        backoff, said once a minute) rather than given up on: systemd's start limit would
        otherwise leave a workstation dead after a database outage at boot."""
        pause, said = 1.0, float("-inf")
        while True:
            try:
                return open_journal(self.config, self.clock)
            except JournalUnavailable as err:
                now = self.clock.monotonic()
                if now - said >= JOURNAL_WAIT_SAID_EVERY:
                    said = now
                    log.error(  # noqa: TRY400 - expected; the message says it all
                        "waiting for the journal before starting", error=str(err), hint=err.hint
                    )
                self.notifier.still_starting(f"waiting for the journal: {err}", 2 * pause)
                if self.clock.wait(self.stop_event, pause):
                    raise
                pause = min(2 * pause, JOURNAL_WAIT_MAX)

    # -- what others may read ---------------------------------------------------------------

    def in_force(self) -> InForce:
        return self._in_force

    def watch(self, name: str) -> WatchSnapshot:
        """What a watch holds, as its own thread last published it."""
        return self._loops[name].snapshot()

    @property
    def journal_lost(self) -> str | None:
        return self.dispatcher.journal_lost

    @property
    def space_low(self) -> bool:
        return self.dispatcher.space_low

    # -- life cycle ---------------------------------------------------------------------------

    def run(self, once: bool = False, on_ready: Callable[[], None] | None = None) -> None:
        """Run until stop() (or, with once, until nothing is left to do)."""
        watcher = self.watcher = Watcher()
        loops = self._loops.values()
        try:
            watcher.start()
            for loop in loops:
                loop.open(watcher)
            for helper in self._helpers:
                helper.start()
            if self.fleet is not None:
                self.fleet.start(self.dispatcher.look_soon)
            self._control.start()
            self.dispatcher.recover()
            for loop in loops:
                loop.first_scan()
            log.info("ready", watches=list(self._loops))
            self.notifier.ready(status_line(self._own_counts()))
            if on_ready:
                on_ready()
            for loop in loops:
                loop.start()
            while not self.stop_event.is_set():
                self._wake.wait(MAX_SLEEP)
                self._wake.clear()
                self._turn()
                if self._reload_requested.is_set():
                    self._reload()
                if once and self.dispatcher.idle() and all(lp.idle() for lp in loops):
                    break
        finally:
            self.stop_event.set()  # with --once the loop ends by itself: stop the helpers too
            self.notifier.stopping()
            self._stop_loops()
            watcher.stop()
            self._control.stop()
            self._shutdown()

    def _turn(self) -> None:
        try:
            self.dispatcher.turn()
            self._report()
        except JournalUnavailable as err:
            # A fleet's database is away: no new step starts (every one needs a claim), work
            # in flight goes on as far as it can, calls retry with a backoff. The dispatcher's
            # health check says so in the log (and when it is back); here STATUS= and the
            # watchdog keep going.
            self.notifier.status(f"PAUSED: {err}")
            self.notifier.watchdog(self.clock.monotonic())

    def _report(self) -> None:
        """Once a second at most: STATUS= for systemctl status, and the watchdog, fed only
        from here, so a loop that stops turning stops feeding it."""
        now = self.clock.monotonic()
        if now - self._last_report < REPORT_EVERY:
            return
        self._last_report = now
        COUNTERS.turned(journal_ok=self.journal_lost is None)  # what /healthz waits for
        status = status_line(self._own_counts())
        if self.journal_lost is not None:
            status = f"PAUSED: journal {self.journal_lost}; {status}"
        if waiting := self.dispatcher.waiting():  # issue 14: no window open
            status = f"{status}; {waiting}"
        self.notifier.status(status)
        self.notifier.watchdog(now)

    def _own_counts(self) -> dict[State, int]:
        """STATUS= counts this node's own work (a fleet's journal holds every node's)."""
        return self.fleet.counts() if self.fleet is not None else self.journal.counts()

    def request_reload(self) -> None:
        """From a signal handler: the main loop re-reads the config at its next turn."""
        self._reload_requested.set()
        self._wake.set()

    def _reload(self) -> None:
        """Re-read the config and credentials. Transfers in flight keep the target they
        started with; an invalid config is refused and the running one stays."""
        self._reload_requested.clear()
        new = reread(self.config.source)
        if new is None:
            return
        if {w.name for w in new.watches} != set(self._loops):
            log.warning(
                "reload: adding or removing watches needs a restart; other changes are applied"
            )
        if new.journal != self.config.journal:
            log.warning("reload: a change to journal: needs a restart; other changes are applied")
        self._in_force = InForce.build(
            new, self.clock, links=self._in_force.links, shared=self._in_force.shared
        )
        for w in new.watches:
            if w.name in self._loops:
                self._loops[w.name].reconfigure(w)  # applied by the watch's own thread
        self.config = new
        log.info("config reloaded", source=str(new.source))

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def _stop_loops(self) -> None:
        for loop in self._loops.values():
            loop.wake()
        for loop in self._loops.values():
            loop.join(WATCH_JOIN_TIMEOUT)

    def _shutdown(self) -> None:
        self.dispatcher.shutdown(self.shutdown_grace)
        for helper in self._helpers:
            helper.join()
        if self.fleet is not None:
            self.fleet.stop()  # after the last transfer: its lease was renewed until then
        self.journal.close()
        log.info("stopped")
