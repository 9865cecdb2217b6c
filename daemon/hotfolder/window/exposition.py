"""/metrics: the journal's gauges and the daemon's counters in Prometheus' text format.

A registry of its own (not prometheus_client's global one, which also carries the process and
GC collectors of whatever imported it) with one collector that reads everything at scrape
time: the gauges from the read-only journal (a covering index, no row read), the counters from
`hotfolder.metrics.COUNTERS`. Nothing is stored twice, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hotfolder.metrics import Counters
from hotfolder.model import State
from hotfolder.window.reading import Reader

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HotfolderCollector(Collector):
    def __init__(
        self,
        reader: Reader,
        counters: Counters,
        watches: Sequence[str],
        version: str,
        now: Callable[[], datetime],
        own_counts: Callable[[], Mapping[str, Mapping[State, int]]] | None = None,
    ) -> None:
        self.reader = reader
        # A fleet node counts its own work (as its STATUS= line); else the whole journal.
        self.own_counts = own_counts or reader.counts
        self.counters = counters
        self.watches = tuple(watches)
        self.version = version
        self.now = now

    def collect(self) -> Iterator[Metric]:
        counts = self.own_counts()
        submissions = GaugeMetricFamily(
            "hotfolder_submissions",
            "Submissions in the journal (a fleet node's own work), by watch and state.",
            labels=["watch", "state"],
        )
        for watch in sorted({*self.watches, *counts}):
            by_state = counts.get(watch, {})
            for state in State:
                submissions.add_metric([watch, str(state)], by_state.get(state, 0))
        yield submissions

        now = self.now()
        oldest = self.reader.oldest(State.PENDING)
        pending = GaugeMetricFamily(
            "hotfolder_oldest_pending_seconds",
            "Age of the oldest pending submission (0 when none is pending).",
            labels=["watch"],
        )
        for watch in sorted({*self.watches, *oldest}):
            at = oldest.get(watch)
            age = (now - datetime.fromisoformat(at)).total_seconds() if at else 0.0
            pending.add_metric([watch], max(age, 0.0))
        yield pending

        snap = self.counters.snapshot()
        sent = CounterMetricFamily(
            "hotfolder_bytes_sent",
            "Bytes that reached a target since the daemon started.",
            labels=["watch", "target"],
        )
        for (watch, target), n in sorted(snap.bytes_sent.items()):
            sent.add_metric([watch, target], n)
        yield sent

        failures = CounterMetricFamily(
            "hotfolder_failures",
            "Submissions that failed since the daemon started, by watch and reason code.",
            labels=["watch", "code"],
        )
        for (watch, code), n in sorted(snap.failures.items()):
            failures.add_metric([watch, code], n)
        yield failures

        rate = GaugeMetricFamily(
            "hotfolder_transfer_rate_bytes",
            "Bytes per second sent over the last few seconds.",
            labels=["watch"],
        )
        for watch in sorted({*self.watches, *snap.rate}):
            rate.add_metric([watch], snap.rate.get(watch, 0.0))
        yield rate

        pickup = HistogramMetricFamily(
            "hotfolder_pickup_seconds",
            "From every file stable (ready) to the first byte at the target.",
        )
        pickup.add_metric(
            [],
            [(_bound(b), n) for b, n in snap.pickup.buckets],
            sum_value=snap.pickup.total,
        )
        yield pickup

        available = GaugeMetricFamily(
            "hotfolder_watch_available",
            "1 while a watch's drop folder is there and watched, 0 while it is gone.",
            labels=["watch"],
        )
        for watch in sorted({*self.watches, *snap.available}):
            available.add_metric([watch], 1.0 if snap.available.get(watch, True) else 0.0)
        yield available

        info = GaugeMetricFamily(
            "hotfolder_build_info", "The running hotfolder's version.", labels=["version"]
        )
        info.add_metric([self.version], 1.0)
        yield info


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def registry(collector: HotfolderCollector) -> CollectorRegistry:
    own = CollectorRegistry(auto_describe=False)
    own.register(collector)
    return own


def render(own: CollectorRegistry) -> bytes:
    return generate_latest(own)
