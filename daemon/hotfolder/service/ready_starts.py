"""The order ready work starts in (issue 14): priority, watches taking turns (ReadyQueue), a
target's transfer windows and its max_sessions. The Dispatcher is built on it; what may not
start keeps its place in the queue."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import structlog

from hotfolder.config.settings import WatchConfig
from hotfolder.model import State
from hotfolder.service.in_force import Current
from hotfolder.state.port import JournalPort
from hotfolder.transfer.ready_queue import Ready, ReadyQueue

log = structlog.get_logger()


class ReadyStarts:
    """The ready-queue part of the Dispatcher: queue a submission in its place, and fill free
    workers from the queue, best first. Called with the Dispatcher's lock held, except
    `dispatch` and `waiting`, which take it."""

    journal: JournalPort
    current: Current
    lock: threading.RLock
    slots: int
    running: dict[str, Future[None]]
    # Waiting for a worker, a window or a session of their target: the pool never queues,
    # so the order is the ReadyQueue's, not the pool's first-in first-out.
    queue: ReadyQueue
    running_target: dict[str, str]  # sid -> target, for max_sessions

    def _dispatch_locked(self, sid: str) -> None:
        """Start `sid` now (the Dispatcher's: admission, then a worker)."""
        raise NotImplementedError

    def dispatch(self, sid: str) -> None:
        """Queue `sid` in its place, and start what may start now."""
        with self.lock:
            self._queue_locked(sid)
            self._start_ready()

    def _queue_locked(self, sid: str) -> None:
        row = self.journal.get(sid)
        if row is None or sid in self.running or sid in self.queue:
            return
        watch = self.current().watch(row.watch)
        if watch is None:
            log.warning(
                "submission's watch is no longer configured", submission_id=sid, watch=row.watch
            )
            return
        self.queue.push(Ready(sid, watch.name, watch.target, priority_of(watch, row.detail)))

    def _start_ready(self) -> None:
        """Fill the free workers from the queue, best first; what may not start keeps its
        place (its target's window is closed, or it runs max_sessions already)."""
        while len(self.running) < self.slots:
            item = self.queue.pop(self._may_start)
            if item is None:
                return
            self._dispatch_locked(item.sid)

    def _may_start(self, item: Ready) -> bool:
        link = self.current().links.get(item.target)
        if link is None:
            return True
        if not link.may_start():
            return False
        cap = link.settings.max_sessions
        return cap is None or sum(t == item.target for t in self.running_target.values()) < cap

    def _requeue_paused(self, sid: str) -> None:
        """A transfer that ended ready again was paused at its window's end: it waits for
        the next window in the queue (not picked up as an operator's release)."""
        if self.journal.state_of(sid) is State.READY:
            log.info("paused: waits for the next transfer window", submission_id=sid)
            self._queue_locked(sid)

    def waiting(self) -> str | None:
        """'target aspera: 3 ready, waiting for the 20:00 window (...)' for each target whose
        queued work waits for a window (status, STATUS=); None when none does."""
        with self.lock:
            queued = self.queue.order()
        links = self.current().links
        lines = []
        for target in sorted({item.target for item in queued}):
            link = links.get(target)
            words = link.waiting() if link is not None and not link.may_start() else None
            if words is not None:
                count = sum(item.target == target for item in queued)
                lines.append(f"target {target}: {count} ready, {words}")
        return "; ".join(lines) or None


def priority_of(watch: WatchConfig, detail: dict[str, object]) -> int:
    """The watch's priority, raised by the manifest's own where the watch allows it (never
    lowered: an editor can hurry a clip, not hold back a colleague's watch)."""
    own = detail.get("priority")
    if watch.manifest_priority == "allowed" and isinstance(own, int):
        return max(watch.priority, own)
    return watch.priority
