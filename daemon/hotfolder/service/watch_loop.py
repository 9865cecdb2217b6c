"""One watch's loop on a thread of its own: a share whose stat hangs holds up only its watch.

The thread owns the watch's tracker: nobody else calls it (a reload hands it new settings,
the main loop reads the `WatchSnapshot` the thread publishes after each turn). It chooses
inotify or polling, waits out an unmounted share, feeds the tracker, and hands each decision
to the outcomes. It sleeps until the next event or the next moment something can change.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import structlog

from hotfolder.assemble.decisions import decision_id
from hotfolder.assemble.tracker import Decision, Gone, Waiting, WatchSettings, WatchTracker
from hotfolder.clock import Clock
from hotfolder.config.settings import WatchConfig
from hotfolder.intake.watch import Alarm, Change, DirPoller, Watcher, choose_mode, limit_hint, scan
from hotfolder.metrics import COUNTERS
from hotfolder.model import State
from hotfolder.service.availability import Availability, Look
from hotfolder.service.outcomes import Outcomes, WaitForEarlier
from hotfolder.state.journal_file import JournalUnavailable

log = structlog.get_logger()

MAX_SLEEP = 1.0
MIN_SLEEP = 0.005
RETRY_AFTER_ERROR = 5.0
RETRY_AFTER_BUG = 60.0
WAKE_UP = Change("", PurePosixPath(), False)  # no watch's change: only ends the wait


def settings_of(w: WatchConfig, shared: bool = False) -> WatchSettings:
    """`shared`: a fleet's node (issue 13), whose ids must be the same on every node."""
    return WatchSettings(
        w.name,
        w.path,
        w.stability_seconds,
        w.incomplete_after,
        w.max_manifest_bytes,
        w.ignore,
        w.max_settle,
        shared,
    )


@dataclass(frozen=True, slots=True)
class WatchSnapshot:
    """What a watch holds, as its thread last saw it (read by any thread)."""

    name: str
    mode: str = "inotify"  # or "poll"
    available: bool = True
    busy: bool = True  # a manifest still needs a look (or the first turn has not run)
    waiting: int = 0  # manifests waiting for files
    next_due: float = float("inf")  # when its tracker next looks (monotonic)
    remembered: int = 0  # paths its stability bookkeeping holds


@dataclass(slots=True)
class Wiring:
    """What a watch loop talks to."""

    clock: Clock
    stop: threading.Event
    outcomes: Outcomes
    dispatch: Callable[[str], None]
    paused: Callable[[], bool]  # the journal is not ours: decide nothing
    use_observer: bool = True


class WatchLoop:
    def __init__(self, config: WatchConfig, tracker: WatchTracker, wiring: Wiring) -> None:
        self.config, self.tracker, self.wiring = config, tracker, wiring
        self.changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self.availability = Availability(config.name)
        self.skip = config.own_folders
        self.mode = "inotify"
        self.poller: DirPoller | None = None
        self.watcher: Watcher | None = None
        self.next_rescan = self.next_poll = 0.0
        self.restart = False  # the folder came back: watch it again at the next turn
        self.warned_slow: set[str] = set()
        self.thread: threading.Thread | None = None
        self._new_settings: WatchSettings | None = None  # from a reload, for the thread
        self._lock = threading.Lock()  # _snapshot
        self._snapshot = WatchSnapshot(config.name)

    # -- from other threads -----------------------------------------------------------------

    def snapshot(self) -> WatchSnapshot:
        with self._lock:
            return self._snapshot

    def idle(self) -> bool:
        return not self.snapshot().busy and self.changes.empty()

    def reconfigure(self, config: WatchConfig) -> None:
        """A reload: the new settings reach the tracker through the watch's own thread."""
        self.config = config
        self._new_settings = settings_of(config, self.tracker.settings.shared)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{self.name}")
        self.thread.start()

    def wake(self) -> None:
        self.changes.put(WAKE_UP)

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                log.warning("a watch is stuck (a hung file system?); leaving it", watch=self.name)

    @property
    def name(self) -> str:
        return self.config.name

    # -- set-up (before the thread runs, then on its thread) -----------------------------

    def open(self, watcher: Watcher, refused: OSError | None = None) -> None:
        """Start watching (again): inotify or polling, see `watch_by_events`."""
        self.watcher = watcher
        w = self.config
        self.availability.remember(w.path)
        use = self.wiring.use_observer
        self.mode = "inotify" if watch_by_events(watcher, w, self.changes, use, refused) else "poll"
        self.poller = None
        if self.mode == "poll":
            self.poller = DirPoller(w.path, w.ignore, self.skip)
            # Its first poll lists everything: that is the rescan, no need to walk twice.
            now = self.wiring.clock.monotonic()
            self.tracker.on_scan(self.poller.poll(), now)
            self.next_rescan = now + w.rescan_seconds
        self._update(mode=self.mode)
        log.info("watching", watch=w.name, path=str(w.path), mode=self.mode)

    def first_scan(self) -> None:
        """The start-up scan, where inotify watches (a poller's first poll was one)."""
        if self.poller is None:
            self._rescan()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self.wiring.stop.is_set():
            try:
                self.turn()
            except Exception:
                # A bug or an odd file system must not end watching: log it, go on.
                log.exception("watch loop error", watch=self.name)
                self.wiring.stop.wait(1.0)

    def turn(self) -> None:
        clock, stop = self.wiring.clock, self.wiring.stop
        if self._new_settings is not None:
            self.tracker.reconfigure(self._new_settings)
            self._new_settings = None
        now = clock.monotonic()
        moments = [now + MAX_SLEEP, self.next_rescan, self.availability.next_probe]
        if self.availability.available:
            moments.append(self.tracker.next_due())
        if self.poller is not None:
            moments.append(self.next_poll)
        self._take_changes(min(max(min(moments) - now, MIN_SLEEP), MAX_SLEEP))
        now = clock.monotonic()
        if stop.is_set() or not self._there(now):
            return
        if self.poller is not None and now >= self.next_poll:
            self.tracker.on_scan(self.poller.poll(), now)
            self.next_poll = now + self.config.poll_interval
        if now >= self.next_rescan:
            self._rescan()
        if self.wiring.paused():
            return  # decisions would be written to a journal nobody reads: wait for it
        decisions = self.tracker.check(now)
        self._publish()  # before the journal hears of them: a reader never sees it newer
        for decision in decisions:
            self._apply_or_retry(decision, now)
        self.tracker.prune(now)
        self._publish()

    def _there(self, now: float, probe: bool = False) -> bool:
        look = self.availability.look(now, probe)
        self._update(available=look is not Look.AWAY)
        COUNTERS.watch_available(self.name, look is not Look.AWAY)  # the same as the snapshot
        if look is Look.BACK or self.restart:
            self.restart = False
            if self.watcher is not None:
                self.open(self.watcher)  # in poll mode its first poll is the rescan
            self.first_scan()
        return look is not Look.AWAY

    def _publish(self) -> None:
        """After a whole turn: what the tracker holds now."""
        self._update(
            busy=self.tracker.busy,
            waiting=self.tracker.waiting,
            next_due=self.tracker.next_due(),
            remembered=self.tracker.remembered,
        )

    def _update(self, **fields: Any) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, **fields)

    def _take_changes(self, timeout: float) -> None:
        try:
            change = self.changes.get(timeout=timeout)
        except queue.Empty:
            return
        now = self.wiring.clock.monotonic()
        while True:
            self._on_change(change, now)
            try:
                change = self.changes.get_nowait()
            except queue.Empty:
                return

    def _on_change(self, change: Change, now: float) -> None:
        if change.watch != self.name:
            return  # the wake-up
        if change.alarm is Alarm.REFUSED:
            if self.poller is None and self.watcher is not None:
                self.open(self.watcher, refused=change.error)
            return
        if change.alarm is Alarm.ROOT_LOST:  # deleted, moved away or unmounted: look now
            self.availability.lost()
            self._there(now, probe=True)
            return
        if change.is_dir:
            for rel in scan(self.config.path, self.config.ignore, self.skip, change.relpath):
                self.tracker.on_event(rel, now)
        else:
            self.tracker.on_event(change.relpath, now, change.kind)

    def _rescan(self) -> None:
        now = self.wiring.clock.monotonic()
        self.tracker.on_scan(scan(self.config.path, self.config.ignore, self.skip), now)
        self.next_rescan = now + self.config.rescan_seconds

    # -- decisions --------------------------------------------------------------------------

    def _apply_or_retry(self, decision: Decision, now: float) -> None:
        if isinstance(decision, Gone):
            # Only from a folder known to be there: an unmounted share deletes nothing. A
            # folder that came back is watched again at the next turn, not from here.
            look = self.availability.look(self.wiring.clock.monotonic(), probe=True)
            if look is Look.AWAY:
                return
            self.restart = self.restart or look is Look.BACK
        if isinstance(decision, Waiting):
            warn_if_slow(self.config, decision, self.wiring.clock.monotonic(), self.warned_slow)
        try:
            self.wiring.outcomes.apply(self.config, decision, self.wiring.dispatch)
        except WaitForEarlier:
            log.info(
                "an earlier version of this manifest is still being sent; waiting for it",
                watch=self.name,
                submission_id=decision_id(decision),
            )
            self.tracker.reconsider(decision, now + RETRY_AFTER_ERROR)
        except (sqlite3.Error, OSError, JournalUnavailable) as err:
            # Most likely a full disk (or a fleet's database away): the decision was not
            # recorded, so it is not made.
            # The tracker looks at the manifest again later; nothing is lost.
            log.error(  # noqa: TRY400 - an expected condition; the error says enough
                "could not record a decision; will look again",
                watch=self.name,
                submission_id=decision_id(decision),
                error=str(err),
            )
            self.tracker.reconsider(decision, now + RETRY_AFTER_ERROR)
        except Exception:
            # A bug met by one manifest stops that manifest only, never the watch.
            log.exception(
                "could not apply a decision; will look again",
                watch=self.name,
                submission_id=decision_id(decision),
            )
            self.tracker.reconsider(decision, now + RETRY_AFTER_BUG)


def watch_by_events(
    watcher: Watcher,
    w: WatchConfig,
    sink: queue.SimpleQueue[Change],
    use_observer: bool,
    refused: OSError | None,
) -> bool:
    """inotify where events arrive, polling where they do not (a network share), or where the
    kernel refuses, at start or later for a new subfolder (`refused`). True: inotify."""
    if use_observer and refused is None and choose_mode(w.mode, w.path) == "inotify":
        try:
            watcher.add(w.name, w.path, sink, w.own_folders)
        except OSError as err:
            refused = err
        else:
            return True
    if refused is not None:
        watcher.remove(w.name)
        log.warning(
            "inotify refused this folder; polling it instead",
            watch=w.name,
            error=str(refused),
            hint=limit_hint(refused),
        )
    return False


def warn_if_slow(watch: WatchConfig, waiting: Waiting, now: float, warned: set[str]) -> None:
    """Files of a waiting submission that keep changing past max_settle: said once."""
    waited = now - waiting.since
    sid = waiting.submission_id
    if waiting.unsettled and waited > watch.max_settle and sid not in warned:
        warned.add(sid)
        log.warning(
            "files still changing",
            submission_id=sid,
            watch=watch.name,
            state=str(State.PENDING),
            files=[str(p) for p in waiting.unsettled],
            waited_s=round(waited),
            hint="a copy may be stuck, or something keeps rewriting the file",
        )
