"""What the running daemon counts for /metrics and /healthz: a leaf every stage may call.

Gauges (submissions by state, the oldest pending one) are read from the journal when they are
scraped; what the journal cannot say after the fact is counted here as it happens: bytes sent,
failures, the pick-up time (stable -> first byte), the rate of the last few seconds, and the
main loop's heartbeat. Plain numbers under one lock, no Prometheus types: the window
(`hotfolder.window.exposition`) turns a `Snapshot` into the text format, and a process that
never serves /metrics (a CLI command) pays for a few dictionary updates at most.

Each hook is O(1) and never raises, so counting can never slow or stop a transfer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

#: Upper bounds of the pick-up histogram, in seconds (stable -> first byte).
PICKUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
#: The transfer rate is the bytes of this many seconds, divided by them.
RATE_WINDOW = 10.0
#: A submission that became ready this long ago and never sent a byte is forgotten.
READY_KEPT = 86400.0


@dataclass(frozen=True, slots=True)
class Histogram:
    buckets: tuple[tuple[float, int], ...]  # (upper bound, cumulative count), +Inf last
    count: int
    total: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    bytes_sent: dict[tuple[str, str], int]  # (watch, target) -> bytes
    failures: dict[tuple[str, str], int]  # (watch, code) -> count
    rate: dict[str, float]  # watch -> bytes/s over RATE_WINDOW
    pickup: Histogram
    available: dict[str, bool]  # watch -> its drop folder is there
    heartbeat_age: float | None  # seconds since the main loop last turned; None: never
    journal_ok: bool


@dataclass(slots=True)
class _Sent:
    watch: str
    done: int
    samples: deque[tuple[float, int]] = field(default_factory=deque)


class Counters:
    """The process's counters. `monotonic` is the clock seam for tests."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self._lock = threading.Lock()
        self.targets: dict[str, str] = {}  # watch -> target name, set by the wiring
        self._bytes: dict[tuple[str, str], int] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._ready_at: dict[str, float] = {}
        self._sent: dict[str, _Sent] = {}
        self._watch_samples: dict[str, deque[tuple[float, int]]] = {}
        self._pickup = [0] * len(PICKUP_BUCKETS)
        self._pickup_count = 0
        self._pickup_sum = 0.0
        self._available: dict[str, bool] = {}
        self._heartbeat: float | None = None
        self._journal_ok = True

    # -- hooks ------------------------------------------------------------------------------

    def ready(self, sid: str) -> None:
        """`sid` became ready (every file stable): its pick-up clock starts."""
        with self._lock:
            now = self._now()
            self._ready_at[sid] = now
            if len(self._ready_at) > 10_000:  # never sent (held, failed): drop the stale ones
                self._ready_at = {k: t for k, t in self._ready_at.items() if now - t < READY_KEPT}

    def progress(self, sid: str, watch: str, done: int) -> None:
        """`sid` has `done` bytes at its target (a running total, as the journal keeps it)."""
        with self._lock:
            now = self._now()
            sent = self._sent.get(sid)
            if sent is None:
                sent = self._sent[sid] = _Sent(watch, 0)
                started = self._ready_at.pop(sid, None)
                if started is not None and done > 0:
                    self._observe_pickup(now - started)
            delta = done - sent.done
            sent.done = done
            if delta <= 0:
                return  # a resumed session starts its count again
            key = (watch, self.targets.get(watch, ""))
            self._bytes[key] = self._bytes.get(key, 0) + delta
            sent.samples.append((now, delta))
            self._watch_samples.setdefault(watch, deque()).append((now, delta))
            _trim(sent.samples, now)

    def first_byte(self, sid: str) -> None:
        """`sid`'s first byte left for its target (the transfer's first progress report): its
        pick-up time ends. The journal hears of progress a second later at most, too late for
        a pick-up measured in fractions of a second; later calls do nothing."""
        with self._lock:
            started = self._ready_at.pop(sid, None)
            if started is not None:
                self._observe_pickup(self._now() - started)

    def ended(self, sid: str) -> None:
        """`sid` left the transfer (complete, failed, held): its rate is no longer current."""
        with self._lock:
            self._sent.pop(sid, None)
            self._ready_at.pop(sid, None)

    def failed(self, watch: str, code: str) -> None:
        with self._lock:
            self._failures[(watch, code)] = self._failures.get((watch, code), 0) + 1

    def watch_available(self, watch: str, available: bool) -> None:
        with self._lock:
            self._available[watch] = available

    def turned(self, journal_ok: bool) -> None:
        """The daemon's main loop turned (it calls this about once a second)."""
        with self._lock:
            self._heartbeat = self._now()
            self._journal_ok = journal_ok

    # -- reads ------------------------------------------------------------------------------

    def rate_of(self, sid: str) -> float | None:
        """Bytes per second of `sid` over the last RATE_WINDOW seconds; None if not sending."""
        with self._lock:
            sent = self._sent.get(sid)
            if sent is None:
                return None
            now = self._now()
            _trim(sent.samples, now)
            return sum(n for _, n in sent.samples) / RATE_WINDOW

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self._now()
            rate = {}
            for watch, samples in self._watch_samples.items():
                _trim(samples, now)
                rate[watch] = sum(n for _, n in samples) / RATE_WINDOW
            cumulative, running = [], 0
            for bound, n in zip(PICKUP_BUCKETS, self._pickup, strict=True):
                running += n
                cumulative.append((bound, running))
            cumulative.append((float("inf"), self._pickup_count))
            return Snapshot(
                bytes_sent=dict(self._bytes),
                failures=dict(self._failures),
                rate=rate,
                pickup=Histogram(tuple(cumulative), self._pickup_count, self._pickup_sum),
                available=dict(self._available),
                heartbeat_age=None if self._heartbeat is None else now - self._heartbeat,
                journal_ok=self._journal_ok,
            )

    def _observe_pickup(self, seconds: float) -> None:
        self._pickup_count += 1
        self._pickup_sum += seconds
        for i, bound in enumerate(PICKUP_BUCKETS):
            if seconds <= bound:
                self._pickup[i] += 1
                return


def _trim(samples: deque[tuple[float, int]], now: float) -> None:
    while samples and now - samples[0][0] > RATE_WINDOW:
        samples.popleft()


#: The process's one set of counters: the stages call its hooks, the window reads it.
COUNTERS = Counters()
