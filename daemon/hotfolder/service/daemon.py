"""The daemon: wires watch -> tracker -> journal -> delivery, and runs the loops.

Each watch has a thread of its own that owns its tracker and decides, so a share whose stat
hangs holds up only that watch; it sleeps until the next event or the next moment its tracker
said something can change. watchdog's thread only queues paths. A small pool of workers runs
transfers, so a slow target never stalls detection. The caller's thread reaps transfers,
reports to systemd and reloads.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

import structlog

from hotfolder import beneath
from hotfolder.after import postprocess
from hotfolder.after.alerts import Alerts
from hotfolder.after.verify import AssetKey, Verifier
from hotfolder.assemble import rules
from hotfolder.assemble.decisions import decision_id, decision_manifest
from hotfolder.assemble.tracker import (
    Decision,
    Failed,
    FileSystem,
    Gone,
    GoneWhy,
    LocalFileSystem,
    Ready,
    Waiting,
    WatchSettings,
    WatchTracker,
)
from hotfolder.clock import Clock, SystemClock
from hotfolder.config import settings as config_module
from hotfolder.config.schema import COMMON_TARGET_PROPERTIES
from hotfolder.config.settings import Config, WatchConfig
from hotfolder.intake.watch import (
    Alarm,
    Change,
    DirPoller,
    FolderGuard,
    Presence,
    Watcher,
    choose_mode,
    limit_hint,
    scan,
)
from hotfolder.model import IN_FLIGHT, Problem, State
from hotfolder.service.sd_notify import Notifier, status_line
from hotfolder.state import recovery
from hotfolder.state.journal import Journal, JournalHealth, Row, StaleTransition
from hotfolder.state.known import JournalKnown
from hotfolder.transfer import targets
from hotfolder.transfer.delivery import Cancelled, Delivery, RetryPolicy, manifest_session
from hotfolder.transfer.faults import AdminHolds

log = structlog.get_logger()

MAX_SLEEP = 1.0
MAX_PROBE_BACKOFF = 60.0
WATCH_JOIN_TIMEOUT = 10.0
RETRY_AFTER_ERROR = 5.0
RETRY_AFTER_BUG = 60.0
GONE_EVENTS = {
    GoneWhy.REMOVED: "manifest removed before sending",
    GoneWhy.REPLACED: "manifest changed while waiting; it is a new submission now",
    GoneWhy.NOT_A_MANIFEST: "not a manifest after all; left alone",
    GoneWhy.LEFT: "manifest left the drop folder",
}
REPORT_EVERY = 1.0
MIN_SLEEP = 0.005
JOURNAL_FILE = "journal.sqlite"
DEFAULT_QUOTA: int = COMMON_TARGET_PROPERTIES["quota_bytes"]["default"]


def _settings(w: WatchConfig) -> WatchSettings:
    return WatchSettings(
        w.name,
        w.path,
        w.stability_seconds,
        w.incomplete_after,
        w.max_manifest_bytes,
        w.ignore,
        w.max_settle,
    )


@dataclass(slots=True)
class _Watch:
    config: WatchConfig
    tracker: WatchTracker
    target: targets.Target
    next_rescan: float
    skip: tuple[Path, ...] = ()
    mode: str = "inotify"
    poller: DirPoller | None = None
    guard: FolderGuard = field(default_factory=FolderGuard)  # is the folder still the one?
    next_poll: float = 0.0
    available: bool = True
    next_probe: float = 0.0
    backoff: float = 1.0
    warned_slow: set[str] = field(default_factory=set)
    changes: queue.SimpleQueue[Change] = field(default_factory=queue.SimpleQueue)
    # Published by the watch's own thread after each turn (the tracker is touched by that
    # thread only): the main loop reads this flag, never the tracker's dicts.
    busy: bool = True
    new_settings: WatchSettings | None = None  # from a reload, for the watch thread to apply
    thread: threading.Thread | None = None


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
    journal: Journal = field(init=False)
    known: JournalKnown = field(init=False)
    _wake: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)  # _running, _deferred
    _watches: dict[str, _Watch] = field(default_factory=dict)
    _running: dict[str, Future[None]] = field(default_factory=dict)
    _deferred: set[str] = field(default_factory=set)  # ready, waiting for quota
    _last_report: float = float("-inf")
    _reload_requested: threading.Event = field(default_factory=threading.Event)
    _verifier: Verifier | None = field(init=False, default=None)
    _watcher: Watcher | None = field(init=False, default=None)
    _alerts: Alerts | None = field(init=False, default=None)
    _space_low: bool = False
    journal_lost: str | None = None  # why the journal file is not ours any more, if it is not
    _held: AdminHolds = field(default_factory=AdminHolds)  # tell holds; resume the admin's
    _pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.config.state_dir / JOURNAL_FILE)
        self.known = JournalKnown(self.journal, self.config.state_dir)
        self._verifier = (
            Verifier(self.journal, self.config.backlot, self.clock, self.stop_event)
            if self.config.backlot
            else None
        )
        self._alerts = Alerts.from_config(self.config.notifications, self.clock, self.stop_event)
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="transfer")
        built = {
            name: targets.build(t, self.config.state_dir) for name, t in self.config.targets.items()
        }
        now = self.clock.monotonic()
        for w in self.config.watches:
            tracker = WatchTracker(_settings(w), self.fs, self.known)
            self._watches[w.name] = _Watch(w, tracker, built[w.target], now, w.own_folders)

    # -- life cycle -----------------------------------------------------------------------

    def run(self, once: bool = False, on_ready: Callable[[], None] | None = None) -> None:
        """Run until stop() (or, with once, until nothing is left to do)."""
        watcher = self._watcher = Watcher()
        try:
            watcher.start()
            for w in self._watches.values():
                self._start_watching(w)
            if self._verifier is not None:
                self._verifier.start()
            if self._alerts is not None:
                self._alerts.start()
            self._recover()
            for w in self._watches.values():
                if w.poller is None:
                    self._rescan(w)
            log.info("ready", watches=[w.config.name for w in self._watches.values()])
            self.notifier.ready(status_line(self.journal.counts()))
            if on_ready:
                on_ready()
            for w in self._watches.values():
                w.thread = threading.Thread(
                    target=self._watch_loop, args=(w,), daemon=True, name=f"watch-{w.config.name}"
                )
                w.thread.start()
            while not self.stop_event.is_set():
                self._wake.wait(MAX_SLEEP)
                self._wake.clear()
                self._reap()
                self._resume_if_space()
                self._held.tick(
                    self.journal,
                    self.clock,
                    {name: w.target for name, w in self._watches.items()},
                    self._dispatch,
                    self._alerts,
                )
                self._report()
                if self._reload_requested.is_set():
                    self._reload()
                if once and self._idle():
                    break
        finally:
            self.stop_event.set()  # with --once the loop ends by itself: stop the helpers too
            self.notifier.stopping()
            self._stop_watch_threads()
            watcher.stop()
            self._shutdown()

    def _stop_watch_threads(self) -> None:
        for w in self._watches.values():
            w.changes.put(Change("", PurePosixPath(), False))  # wakes it at once
        for w in self._watches.values():
            if w.thread is not None:
                w.thread.join(WATCH_JOIN_TIMEOUT)
                if w.thread.is_alive():
                    log.warning(
                        "a watch is stuck (a hung file system?); leaving it behind",
                        watch=w.config.name,
                    )

    def _report(self) -> None:
        """Once a second at most: STATUS= for systemctl status, and the watchdog, fed only
        from here, so a loop that stops turning stops feeding it."""
        now = self.clock.monotonic()
        if now - self._last_report < REPORT_EVERY:
            return
        self._last_report = now
        self._check_journal()
        status = status_line(self.journal.counts())
        if self.journal_lost is not None:
            status = f"PAUSED: journal {self.journal_lost}; {status}"
        self.notifier.status(status)
        self.notifier.watchdog(now)
        if self.journal_lost is None:
            self._pick_up_released()

    def _check_journal(self) -> None:
        """A journal deleted or replaced under us would take every later decision into a
        file nobody reads: nothing new is decided or started until it is back."""
        health = self.journal.healthy()
        lost = None if health is JournalHealth.OK else str(health)
        if lost != self.journal_lost:
            if lost is None:
                log.info("the journal file is back; resuming", path=str(self.journal.path))
                with self._lock:
                    for sid in sorted(self._deferred):
                        self._deferred.discard(sid)
                        self._dispatch_locked(sid)
            else:
                log.error(
                    "the journal file is gone: new work paused",
                    path=str(self.journal.path),
                    found=lost,
                    hint="put the file back (or restart hotfolder to start a new journal; "
                    "kept files are recognised by the markers in the state folder)",
                )
            self.journal_lost = lost

    def _pick_up_released(self) -> None:
        """Submissions an operator released (`hotfolder retry`) come back as ready."""
        with self._lock:
            busy = set(self._running) | self._deferred
        for row in self.journal.rows(frozenset({State.READY}), limit=50):
            if row.id not in busy:
                log.info(
                    "released by an operator",
                    submission_id=row.id,
                    watch=row.watch,
                    state=str(State.READY),
                )
                self._dispatch(row.id)

    def request_reload(self) -> None:
        """From a signal handler: the main loop re-reads the config at its next turn."""
        self._reload_requested.set()
        self._wake.set()

    def _reload(self) -> None:
        """Re-read the config and credentials. Transfers in flight keep the target they
        started with; an invalid config is refused and the running one stays."""
        self._reload_requested.clear()
        try:
            new = config_module.load(self.config.source)
        except config_module.InvalidConfig as err:
            log.error(  # noqa: TRY400 - the errors say it all; a traceback would not help
                "reload refused: the new config is invalid; keeping the running one",
                errors=[str(e) for e in err.errors],
            )
            return
        if {w.name for w in new.watches} != set(self._watches):
            log.warning(
                "reload: adding or removing watches needs a restart; other changes are applied"
            )
        built = {name: targets.build(t, new.state_dir) for name, t in new.targets.items()}
        for w in new.watches:
            current = self._watches.get(w.name)
            if current is None:
                continue
            current.config = w
            current.target = built[w.target]
            current.new_settings = _settings(w)  # applied by the watch's own thread
        self.config = new
        log.info("config reloaded", source=str(new.source))

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def _shutdown(self) -> None:
        """Warm stop: running transfers get `shutdown_grace` seconds to finish, then they are
        cancelled; the journal keeps their state and the next start resumes them."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = list(self._running.values())
        if running:
            log.info(
                "waiting for running transfers",
                count=len(running),
                grace_seconds=self.shutdown_grace,
            )
            futures.wait(running, timeout=self.shutdown_grace)
        self.cancel_event.set()
        self._pool.shutdown(wait=True)
        if self._verifier is not None:
            self._verifier.join()
        if self._alerts is not None:
            self._alerts.join()
        self.journal.close()
        log.info("stopped")

    def _idle(self) -> bool:
        watches_idle = all(not w.busy and w.changes.empty() for w in self._watches.values())
        with self._lock:
            return not self._running and not self._deferred and watches_idle

    # -- the loop -------------------------------------------------------------------------

    def _start_watching(self, w: _Watch, refused: OSError | None = None) -> None:
        """inotify where events arrive, polling where they do not (or the kernel refuses,
        at start or later for a new subfolder: `refused`)."""
        w.guard.remember(w.config.path)
        mode = choose_mode(w.config.mode, w.config.path) if self.use_observer else "poll"
        assert self._watcher is not None
        if mode == "inotify" and refused is None:
            try:
                self._watcher.add(w.config.name, w.config.path, w.changes, w.skip)
            except OSError as err:
                refused = err
        if refused is not None:
            mode = "poll"
            self._watcher.remove(w.config.name)
            log.warning(
                "inotify refused this folder; polling it instead",
                watch=w.config.name,
                error=str(refused),
                hint=limit_hint(refused),
            )
        if mode == "poll":
            w.poller = DirPoller(w.config.path, w.config.ignore, w.skip)
            # Its first poll lists everything: that is the rescan, no need to walk twice.
            now = self.clock.monotonic()
            w.tracker.on_scan(w.poller.poll(), now)
            w.next_rescan = now + w.config.rescan_seconds
        else:
            w.poller = None
        w.mode = mode
        log.info("watching", watch=w.config.name, path=str(w.config.path), mode=mode)

    def _available(self, w: _Watch, now: float, probe: bool = False) -> bool:
        """Is the watch folder there? An unmounted share is reported once and probed with
        backoff; meanwhile nothing in it is treated as deleted."""
        if w.available and now < w.next_probe and not probe:
            return True
        root = w.config.path
        presence = w.guard.check()  # a bare mount point is there but is not the share
        if presence.usable:
            w.next_probe, w.backoff = now + 1.0, 1.0
            if not w.available or presence is Presence.REPLACED:
                w.available = True
                log.info(
                    "watch folder is back; rescanning", watch=w.config.name, found=str(presence)
                )
                self._start_watching(w)  # in poll mode its first poll is the rescan
                if w.poller is None:
                    self._rescan(w)
            return True
        if w.available:
            w.available = False
            log.warning(
                "watch folder unavailable; waiting for it (nothing is treated as deleted)",
                watch=w.config.name,
                path=str(root),
                found=str(presence),
                hint="check the share is mounted and readable by this user",
            )
        w.next_probe = now + w.backoff
        w.backoff = min(w.backoff * 2, MAX_PROBE_BACKOFF)
        return False

    def _watch_loop(self, w: _Watch) -> None:
        """One thread per watch: a share whose stat hangs holds up only its own watch."""
        while not self.stop_event.is_set():
            try:
                self._tick_watch(w)
            except Exception:
                # A bug or an odd file system must not end watching: log it, go on.
                log.exception("watch loop error", watch=w.config.name)
                self.stop_event.wait(1.0)

    def _tick_watch(self, w: _Watch) -> None:
        if w.new_settings is not None:
            w.tracker.reconfigure(w.new_settings)
            w.new_settings = None
        now = self.clock.monotonic()
        moments = [now + MAX_SLEEP, w.next_rescan, w.next_probe]
        if w.available:
            moments.append(w.tracker.next_due())
        if w.poller is not None:
            moments.append(w.next_poll)
        self._take_changes(w, min(max(min(moments) - now, MIN_SLEEP), MAX_SLEEP))
        now = self.clock.monotonic()
        if self.stop_event.is_set() or not self._available(w, now):
            return
        if w.poller is not None and now >= w.next_poll:
            w.tracker.on_scan(w.poller.poll(), now)
            w.next_poll = now + w.config.poll_interval
        if now >= w.next_rescan:
            self._rescan(w)
        if self.journal_lost is not None:
            return  # decisions would be written to a journal nobody reads: wait for it
        for decision in w.tracker.check(now):
            self._apply_or_retry(w, decision, now)
        w.tracker.prune(now)
        w.busy = w.tracker.busy

    def _apply_or_retry(self, w: _Watch, decision: Decision, now: float) -> None:
        try:
            self._apply(w, decision)
        except (sqlite3.Error, OSError) as err:
            # Most likely a full disk: the decision was not recorded, so it is not made.
            # The tracker looks at the manifest again later; nothing is lost.
            log.error(  # noqa: TRY400 - an expected condition; the error says enough
                "could not record a decision; will look again",
                watch=w.config.name,
                submission_id=decision_id(decision),
                error=str(err),
            )
            w.tracker.reconsider(decision_manifest(decision), now + RETRY_AFTER_ERROR)
        except Exception:
            # A bug met by one manifest stops that manifest only, never the watch.
            log.exception(
                "could not apply a decision; will look again",
                watch=w.config.name,
                submission_id=decision_id(decision),
            )
            w.tracker.reconsider(decision_manifest(decision), now + RETRY_AFTER_BUG)

    def _take_changes(self, w: _Watch, timeout: float) -> None:
        try:
            change = w.changes.get(timeout=timeout)
        except queue.Empty:
            return
        now = self.clock.monotonic()
        while True:
            self._on_change(change, now)
            try:
                change = w.changes.get_nowait()
            except queue.Empty:
                return

    def _on_change(self, change: Change, now: float) -> None:
        w = self._watches.get(change.watch)
        if w is None:
            return  # the wake-up sent by stop()
        if change.alarm is Alarm.REFUSED:
            if w.poller is None:
                self._start_watching(w, refused=change.error)
            return
        if change.alarm is Alarm.ROOT_LOST:  # deleted, moved away or unmounted: look now
            w.guard.lost()
            self._available(w, now, probe=True)
            return
        if change.is_dir:
            for rel in scan(w.config.path, w.config.ignore, w.skip, change.relpath):
                w.tracker.on_event(rel, now)
        else:
            w.tracker.on_event(change.relpath, now, change.kind)

    def _rescan(self, w: _Watch) -> None:
        now = self.clock.monotonic()
        w.tracker.on_scan(scan(w.config.path, w.config.ignore, w.skip), now)
        w.next_rescan = now + w.config.rescan_seconds

    # -- decisions ------------------------------------------------------------------------

    def _apply(self, w: _Watch, decision: Decision) -> None:
        now = self.clock.now()
        if isinstance(decision, Waiting):
            detail = {
                "missing": [str(p) for p in decision.missing],
                "unsettled": [str(p) for p in decision.unsettled],
                "conflicts": [str(p) for p in decision.conflicts],
            }
            self._warn_if_slow(w, decision)
            if self.journal.record_pending(
                decision.submission_id, w.config.name, decision.manifest, now, detail
            ):
                log.info(
                    "manifest seen, waiting for files",
                    submission_id=decision.submission_id,
                    watch=w.config.name,
                    state=str(State.PENDING),
                    manifest=str(decision.manifest),
                    **detail,
                )
        elif isinstance(decision, Gone):
            if not self._available(w, self.clock.monotonic(), probe=True):
                return  # the whole folder went away (a share unmounted): nothing was deleted
            if decision.why is GoneWhy.LEFT:
                self._manifest_left(decision.submission_id)
                return
            self.journal.forget_pending(decision.submission_id)
            log.info(
                GONE_EVENTS[decision.why],
                submission_id=decision.submission_id,
                watch=w.config.name,
                manifest=str(decision.manifest),
            )
        elif isinstance(decision, Failed):
            self._quarantine(w, decision)
        elif isinstance(decision, Ready):
            assets = [{"guid": g, "title": t} for g, t in decision.assets]
            self.journal.record_ready(decision.submission, now, {"assets": assets})
            log.info(
                "submission ready",
                submission_id=decision.submission.id,
                watch=w.config.name,
                state=str(State.READY),
                files=len(decision.submission.files),
                bytes=decision.submission.total_bytes,
            )
            self._dispatch(decision.submission.id)

    def _manifest_left(self, sid: str) -> None:
        """A delivered or failed submission's manifest is gone from the drop folder (we
        archived, deleted or quarantined it, or the editor took it): the same bytes dropped
        again are a new submission (see `known`). A held one stays held for its operator."""
        if self.journal.state_of(sid) in (State.COMPLETE, State.FAILED):
            self.journal.mark_manifest_removed(sid)

    def _warn_if_slow(self, w: _Watch, waiting: Waiting) -> None:
        waited = self.clock.monotonic() - waiting.since
        if (
            waiting.unsettled
            and waited > w.config.max_settle
            and waiting.submission_id not in w.warned_slow
        ):
            w.warned_slow.add(waiting.submission_id)
            log.warning(
                "files still changing",
                submission_id=waiting.submission_id,
                watch=w.config.name,
                state=str(State.PENDING),
                files=[str(p) for p in waiting.unsettled],
                waited_s=round(waited),
                hint="a copy may be stuck, or something keeps rewriting the file",
            )

    def _quarantine(self, w: _Watch, failed: Failed) -> None:
        self.journal.record_failed(
            failed.submission_id,
            w.config.name,
            failed.manifest,
            failed.problems,
            self.clock.now(),
            failed.format,
        )
        self._reject_files(
            w, failed.submission_id, failed.manifest, failed.present, failed.problems
        )

    def _reject_files(
        self,
        w: _Watch,
        sid: str,
        manifest: PurePosixPath,
        present: tuple[PurePosixPath, ...],
        problems: tuple[Problem, ...],
    ) -> None:
        """After `failed` is committed: move the files to failed_dir with the report, tell
        people, log it. A move that fails leaves the files where they are."""
        try:
            folder = postprocess.quarantine(
                sid,
                w.config.name,
                w.config.path,
                manifest,
                present,
                problems,
                w.config.failed_dir,
                self.clock.now(),
                permissions=w.config.permissions,
            )
        except Exception as err:  # a quarantine fault leaves the files; it never stops a watch
            log.exception(
                "cannot quarantine: files left in place",
                submission_id=sid,
                watch=w.config.name,
                error=str(err),
            )
            return
        first = problems[0]
        report = folder / postprocess.REPORT_TXT
        self._tell_failed(sid, w.config.name, first.message, report)
        log.error(
            "submission rejected",
            submission_id=sid,
            watch=w.config.name,
            state=str(State.FAILED),
            code=first.code,
            reason=first.message,
            problems=len(problems),
            report=str(report),
        )

    def _dispatch(self, sid: str) -> None:
        with self._lock:  # watch threads, the main loop and recovery all dispatch
            self._dispatch_locked(sid)

    def _dispatch_locked(self, sid: str) -> None:
        row = self.journal.get(sid)
        if row is None or sid in self._running:
            return
        if row.state is State.READY:
            if not self._space_ok() or self.journal_lost is not None:
                self._deferred.add(sid)
                return
            if not self._fits_quota(row):
                return
            self.journal.transition(sid, State.QUEUED, self.clock.now())
            row = self.journal.get(sid)
            assert row is not None
        w = self._watches.get(row.watch)
        if w is None:
            log.warning(
                "submission's watch is no longer configured", submission_id=sid, watch=row.watch
            )
            return
        future = self._pool.submit(self._deliver, w, row)
        future.add_done_callback(lambda _f: self._wake.set())  # reap it, maybe free quota
        self._running[sid] = future

    def _space_ok(self) -> bool:
        """New work waits while the state or an archive folder is nearly full; work in
        flight goes on (it needs little), and the journal stays whole (SQLite)."""
        folders = {
            self.config.state_dir,
            *(
                w.config.archive_dir
                for w in self._watches.values()
                if w.config.after_success == "archive"
            ),
        }
        low = {}
        for folder in folders:
            try:
                st = os.statvfs(folder)
            except OSError:
                continue
            if st.f_bavail * st.f_frsize < self.config.min_free_bytes:
                low[str(folder)] = st.f_bavail * st.f_frsize
        if low and not self._space_low:
            log.error(
                "disk nearly full: new work paused until space returns",
                free_bytes=low,
                min_free_bytes=self.config.min_free_bytes,
            )
        elif not low and self._space_low:
            log.info("disk space is back: resuming")
        self._space_low = bool(low)
        return not low

    def _fits_quota(self, row: Row) -> bool:
        """Keep what is in flight to one target under its account's quota (ingest rule)."""
        w = self._watches.get(row.watch)
        if w is None:
            return False
        limit = int(self.config.targets[w.config.target].options.get("quota_bytes", DEFAULT_QUOTA))
        same_target = {n for n, o in self._watches.items() if o.config.target == w.config.target}
        in_flight = sum(
            r.bytes_total for r in self.journal.rows(IN_FLIGHT) if r.watch in same_target
        )
        verdict = rules.quota(row.bytes_total, in_flight, limit)
        if verdict is True:
            self._deferred.discard(row.id)
            return True
        if verdict is False:
            if row.id not in self._deferred:
                log.info(
                    "waiting for quota",
                    submission_id=row.id,
                    watch=row.watch,
                    state=str(State.READY),
                    bytes=row.bytes_total,
                    in_flight=in_flight,
                    quota=limit,
                )
            self._deferred.add(row.id)
            return False
        self._deferred.discard(row.id)
        self._reject(w, row, verdict)
        return False

    def _reject(self, w: _Watch, row: Row, problem: Problem) -> None:
        self.journal.transition(
            row.id,
            State.FAILED,
            self.clock.now(),
            note=problem.message,
            error_code=problem.code,
            error_message=problem.message,
        )
        sub = row.submission()
        self._reject_files(
            w, row.id, sub.manifest.relpath, tuple(f.relpath for f in sub.media), (problem,)
        )

    def _retry_for(self, w: _Watch) -> RetryPolicy:
        raw = self.config.targets[w.config.target].options.get("retry")
        return RetryPolicy(**raw) if raw else self.retry

    def _deliver(self, w: _Watch, row: Row) -> None:
        delivery = Delivery(
            w.config, w.target, self.journal, self.clock, self.cancel_event, self._retry_for(w)
        )
        try:
            outcome = delivery.run(row)
            self._after_end(w, row)
            if outcome is State.COMPLETE:
                self._verify(w, row.id)
                if self._alerts is not None:
                    self._alerts.completed(
                        row.id, row.watch, f"{len(row.files)} files, {row.bytes_total} bytes"
                    )
            elif outcome is State.FAILED:
                final = self.journal.get(row.id)
                self._tell_failed(
                    row.id,
                    row.watch,
                    str(final.error_message if final else ""),
                    w.config.failed_dir / row.id / postprocess.REPORT_TXT,
                )
        except Cancelled:
            log.warning(
                "transfer interrupted by shutdown; it resumes on next start",
                submission_id=row.id,
                watch=row.watch,
            )
        except StaleTransition as err:
            log.warning("submission changed hands", submission_id=row.id, error=str(err))
        except Exception:
            # One bad submission must not take the daemon down: log it and leave the journal
            # state, which the next start resumes from.
            log.exception("delivery crashed", submission_id=row.id, watch=row.watch)

    def _after_end(self, w: _Watch, row: Row) -> None:
        """What the journal must know once a submission ended and its files were dealt with:
        whether its manifest left the drop folder, and (kept) a proof that survives it."""
        final = self.journal.get(row.id)
        if final is None or final.state not in (State.COMPLETE, State.FAILED):
            return
        pinned = final.submission().manifest
        found = beneath.look(w.config.path, pinned.relpath)
        if found.identity is None or not pinned.identity.same_as(found.identity):
            self._manifest_left(row.id)
        elif final.state is State.COMPLETE and w.config.after_success == "keep":
            self.known.remember_kept(row.id)

    def _verify(self, w: _Watch, sid: str) -> None:
        """Hand a completed submission to the Backlot check, if its target asks for one."""
        spec = self.config.targets[w.config.target].options.get("verify")
        row = self.journal.get(sid)
        if not spec or row is None or self._verifier is None:
            return
        keys = [AssetKey(a.get("guid"), a.get("title")) for a in row.detail.get("assets", [])]
        self._verifier.add(
            sid,
            spec["backlot"],
            keys,
            float(spec.get("timeout", 7200)),
            float(spec.get("poll_interval", 60)),
        )

    def _resume_if_space(self) -> None:
        with self._lock:
            if self._space_low and self._deferred and self._space_ok():
                for sid in sorted(self._deferred):
                    self._deferred.discard(sid)
                    self._dispatch_locked(sid)

    def _tell_failed(self, sid: str, watch: str, reason: str, report: Path) -> None:
        if self._alerts is not None:
            self._alerts.failed(sid, watch, reason, str(report))

    def _reap(self) -> None:
        with self._lock:
            finished = [sid for sid, future in self._running.items() if future.done()]
            for sid in finished:
                del self._running[sid]
            if finished:
                for sid in sorted(self._deferred):
                    self._dispatch(sid)

    # -- crash recovery -------------------------------------------------------------------

    def _recover(self) -> None:
        """Resume what the last run left (recovery.resume decides; this acts)."""
        for row in self.journal.rows(frozenset({State.READY, *IN_FLIGHT, State.COMPLETE})):
            w = self._watches.get(row.watch)
            if w is None:
                continue
            evidence = partial(
                w.target.delivered, manifest_session(row.submission(), w.config.path)
            )
            step = recovery.resume(row, evidence)
            if step is None:
                continue
            if step.to is not None:
                hold = step.then == "hold"
                self.journal.transition(
                    row.id,
                    step.to,
                    self.clock.now(),
                    note=step.note,
                    **(
                        {"error_code": "manifest-unconfirmed", "error_message": step.note}
                        if hold
                        else {}
                    ),
                )
            if step.then == "dispatch":
                log.info(
                    "resuming submission",
                    submission_id=row.id,
                    watch=row.watch,
                    state=str(step.to or row.state),
                )
                self._dispatch(row.id)
            elif step.then == "finish":
                self._finish_again(w, self.journal.get(row.id) or row)
            else:
                log.warning(
                    "submission held",
                    submission_id=row.id,
                    watch=row.watch,
                    state=str(State.HELD),
                    reason=step.note,
                    hint=f"check the destination, then run: hotfolder retry {row.id}",
                )

    def _finish_again(self, w: _Watch, row: Row) -> None:
        delivery = Delivery(w.config, w.target, self.journal, self.clock, self.cancel_event)
        delivery.finish(row.submission(), log.bind(submission_id=row.id, watch=row.watch))
