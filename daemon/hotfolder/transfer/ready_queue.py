"""The order in which ready submissions start (issue 14): the highest priority first; among
equal priorities the watches take turns, the one served longest ago first, so one editor's
500-episode drop does not starve another watch's single urgent clip; within a watch, first in,
first out. Pure: the dispatcher pushes what became ready and pops when a worker is free,
saying through `may_start` which submissions cannot start now (their target's window is
closed, or it runs `max_sessions` already); those keep their place and their turn.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

MIN_PRIORITY = 0
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5


@dataclass(frozen=True, slots=True)
class Ready:
    """A submission waiting for a worker."""

    sid: str
    watch: str
    target: str
    priority: int = DEFAULT_PRIORITY  # 0-9, 9 first


@dataclass(order=True, frozen=True, slots=True)
class _Entry:
    rank: tuple[int, int]  # (-priority, arrival): a watch's own order
    item: Ready = field(compare=False)


def _always(_: Ready) -> bool:
    return True


class ReadyQueue:
    """Not thread-safe: the dispatcher holds its lock around every call.

    `fair=False` is the order before issue 14 (arrival only, as a thread pool's queue does);
    the benchmark keeps it to measure what fair share changes."""

    def __init__(self, *, fair: bool = True) -> None:
        self.fair = fair
        self._arrivals = itertools.count()
        self._turn = 0  # dispatches so far
        self._by_watch: dict[str, list[_Entry]] = {}
        self._sids: set[str] = set()
        self._served: dict[str, int] = {}  # watch -> the turn it was last served (0: never)

    def __len__(self) -> int:
        return len(self._sids)

    def __contains__(self, sid: object) -> bool:
        return sid in self._sids

    def push(self, item: Ready) -> bool:
        """Queue `item` (False if its submission is queued already)."""
        if item.sid in self._sids:
            return False
        self._sids.add(item.sid)
        priority = item.priority if self.fair else DEFAULT_PRIORITY
        entry = _Entry((-priority, next(self._arrivals)), item)
        bisect.insort(self._by_watch.setdefault(item.watch, []), entry)
        return True

    def remove(self, sid: str) -> bool:
        """Take a submission out (held, forgotten, failed while queued)."""
        if sid not in self._sids:
            return False
        self._sids.discard(sid)
        for watch, entries in self._by_watch.items():
            for i, entry in enumerate(entries):
                if entry.item.sid == sid:
                    del entries[i]
                    if not entries:
                        del self._by_watch[watch]
                    return True
        return True  # unreachable: every queued sid has an entry

    def pop(self, may_start: Callable[[Ready], bool] = _always) -> Ready | None:
        """The submission to start now, or None if none of those queued may start."""
        for entry in self._candidates():
            if may_start(entry.item):
                self._take(entry)
                return entry.item
        return None

    def order(self) -> list[Ready]:
        """Everything queued, in the order it would start if every target were free: for
        `status` ("3rd in line")."""
        copy = ReadyQueue(fair=self.fair)
        copy._by_watch = {w: list(e) for w, e in self._by_watch.items()}
        copy._sids = set(self._sids)
        copy._served = dict(self._served)
        copy._turn = self._turn
        out = []
        while (item := copy.pop()) is not None:
            out.append(item)
        return out

    def _candidates(self) -> Iterator[_Entry]:
        """Every queued entry, best first: priority, then the watch's turn, then arrival.
        Each watch's list is kept sorted (priority, arrival), and within a watch the turn is
        the same, so the order is a lazy merge of the watches' lists: a pop that starts the
        first candidate costs a step per watch, not a sort of everything queued."""
        if not self.fair:
            yield from heapq.merge(*self._by_watch.values())
            return

        def keyed(
            watch: str, entries: list[_Entry]
        ) -> Iterator[tuple[tuple[int, int, int], _Entry]]:
            served = self._served.get(watch, 0)
            for e in entries:
                yield (e.rank[0], served, e.rank[1]), e

        lists = [keyed(w, es) for w, es in self._by_watch.items()]
        for _, entry in heapq.merge(*lists, key=lambda t: t[0]):
            yield entry

    def _take(self, entry: _Entry) -> None:
        item = entry.item
        entries = self._by_watch[item.watch]
        entries.remove(entry)
        if not entries:
            del self._by_watch[item.watch]
        self._sids.discard(item.sid)
        self._turn += 1
        self._served[item.watch] = self._turn
