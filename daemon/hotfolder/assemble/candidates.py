"""A watch tracker's bookkeeping, as plain structures: its settings, each manifest it follows
(Candidate), when each needs its next look (Due), which manifest a named file goes with
(Claims), and all of it together with the seams (Book)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from hotfolder.assemble import grouping, problems
from hotfolder.assemble.looking import FileSystem, Looker
from hotfolder.assemble.stability import StabilityTracker
from hotfolder.config import schema
from hotfolder.config.schema import default
from hotfolder.model import FileIdentity, Problem

NEVER = float("inf")


@dataclass(frozen=True, slots=True)
class WatchSettings:
    name: str
    root: Path
    stability_seconds: float
    incomplete_after: float = default(schema.WATCH, "incomplete_after")
    max_manifest_bytes: int = default(schema.WATCH, "max_manifest_bytes")
    ignore: tuple[str, ...] = ()
    max_settle: float = default(schema.WATCH, "max_settle")
    shared: bool = False  # several workstations see this folder: ids without the inode


class Known(Protocol):
    """What the journal remembers, as the tracker needs it."""

    def resolve(self, base: str) -> str | None:
        """The id for a manifest whose identity gives `base`: `base` (or a later generation
        of it, when the earlier submission's manifest was taken away by us and this is a new
        drop of the same bytes), or None when that submission is already decided."""
        ...

    def in_flight(self, sid: str) -> bool:
        """Is the submission being sent right now?"""
        ...


class NothingKnown:
    def resolve(self, base: str) -> str | None:
        return base

    def in_flight(self, sid: str) -> bool:
        return False


@dataclass(slots=True)
class Candidate:
    """A file that may be a manifest, and what is known of it so far."""

    relpath: PurePosixPath
    first_seen: float
    next_check: float = NEVER
    plan: grouping.Plan | None = None
    plan_identity: FileIdentity | None = None
    settled_identity: FileIdentity | None = None  # decided for this identity: look no more
    waiting_id: str | None = None  # the pending row this candidate stands for
    sent_id: str | None = None  # the submission it became, while its manifest is here
    decided_id: str | None = None  # the submission decided for settled_identity, if known
    left: bool = False  # deleted or moved away since it was last looked at
    refs: frozenset[PurePosixPath] = field(default_factory=frozenset)
    missing: set[PurePosixPath] = field(default_factory=set)
    unsettled: set[PurePosixPath] = field(default_factory=set)
    touched: set[PurePosixPath] = field(default_factory=set)
    refused: dict[PurePosixPath, Problem] = field(default_factory=dict)  # can never be sent
    full: bool = True  # look at every named file next time


class Due:
    """When each candidate needs its next look: a heap of (time, seq, relpath), each entry
    valid only while it is the candidate's next_check (stale ones are skipped)."""

    def __init__(self, candidates: dict[PurePosixPath, Candidate]) -> None:
        self._candidates = candidates
        self._heap: list[tuple[float, int, PurePosixPath]] = []
        self._seq = 0

    def schedule(self, cand: Candidate, at: float) -> None:
        """Look at `cand` at `at`, or sooner if it is due sooner already."""
        if at < cand.next_check:
            cand.next_check = at
            self._seq += 1
            heapq.heappush(self._heap, (at, self._seq, cand.relpath))

    def next(self) -> float:
        while self._heap:
            at, _, relpath = self._heap[0]
            cand = self._candidates.get(relpath)
            if cand is not None and cand.next_check == at:
                return at
            heapq.heappop(self._heap)
        return NEVER

    def take(self) -> Candidate:
        """The candidate due first (call after next() said one is due); it is unscheduled
        until looking at it schedules its next look."""
        _, _, relpath = heapq.heappop(self._heap)
        cand = self._candidates[relpath]
        cand.next_check = NEVER
        return cand


class Claims:
    """A file goes with one manifest: which waiting manifests name it, and which sent (or
    being sent) manifest holds it."""

    def __init__(self, candidates: dict[PurePosixPath, Candidate], due: Due) -> None:
        self._candidates = candidates
        self._due = due
        self.referenced_by: dict[PurePosixPath, set[PurePosixPath]] = {}  # waiting owners
        self._claimed_by: dict[PurePosixPath, PurePosixPath] = {}  # files of sent manifests

    def owners(self, relpath: PurePosixPath) -> set[PurePosixPath]:
        return self.referenced_by.get(relpath, set())

    def claim(self, relpath: PurePosixPath, holder: PurePosixPath) -> None:
        self._claimed_by[relpath] = holder

    def release(self, holder: PurePosixPath) -> None:
        """`holder` left the drop folder: the files it had are free again."""
        for ref, held_by in list(self._claimed_by.items()):
            if held_by == holder:
                del self._claimed_by[ref]

    def index(self, cand: Candidate, refs: frozenset[PurePosixPath]) -> None:
        """`cand` names `refs` from now on (none: it is decided or gone)."""
        for old in cand.refs - refs:
            owners = self.referenced_by.get(old)
            if owners is not None:
                owners.discard(cand.relpath)
                for owner in owners:  # a conflict may be over: let them look now
                    self._due.schedule(self._candidates[owner], -NEVER)
                if not owners:
                    del self.referenced_by[old]
        for new in refs:
            self.referenced_by.setdefault(new, set()).add(cand.relpath)
        cand.refs = refs

    def conflicts(
        self, cand: Candidate, now: float
    ) -> tuple[list[Problem], tuple[PurePosixPath, ...]]:
        """(problems if this manifest loses a conflict, older manifests it waits for). A file
        goes with one manifest: one already sent or being sent keeps it, and of two waiting
        manifests the one seen first keeps it; the newer one fails at once, naming the other."""
        found, older = [], set()
        me = (cand.first_seen, cand.relpath)
        for ref in sorted(cand.refs):
            holder = self._claimed_by.get(ref)
            if holder is not None and holder != cand.relpath:
                found.append(problems.conflict(ref, holder, "was already sent with"))
                continue
            for other in self.referenced_by.get(ref, ()):
                if other == cand.relpath:
                    continue
                rival = self._candidates[other]
                if (rival.first_seen, rival.relpath) < me:
                    found.append(problems.conflict(ref, other, "is already named by"))
                else:
                    older.add(other)
                    self._due.schedule(rival, now)  # the newer one fails at its next look
        return found, tuple(sorted(older)) if not found else ()


class Book:
    """Everything one watch's tracker keeps and looks through, shared by the tracker (input,
    scheduling), its reading of manifests and its verdicts. Only the watch's thread uses it."""

    def __init__(self, settings: WatchSettings, fs: FileSystem, known: Known) -> None:
        self.settings = settings
        self.fs = fs
        self.known = known
        self.stability = StabilityTracker(settings.stability_seconds, settings.max_settle)
        self.candidates: dict[PurePosixPath, Candidate] = {}
        self.due = Due(self.candidates)
        self.claims = Claims(self.candidates, self.due)

    @property
    def looker(self) -> Looker:
        return Looker(self.settings.root, self.fs, self.stability)
