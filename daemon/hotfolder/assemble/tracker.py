"""One watch folder's bookkeeping: from events and scans to submissions that are ready to go.

The tracker owns no thread and reads no clock: its watch's thread (and only that thread) feeds
it events, scan results and the current monotonic time, and the file system comes in through
the FileSystem seam (looking.py). It answers with Decisions (Waiting, Ready, Failed, Gone) and
with the time it next needs looking at, so the watch sleeps exactly until something can change.

A waiting manifest is looked at again only when something it names changes (an event, a scan
that lists the file, a file's stability window ending) or its deadline comes: a 100,000-row
manifest costs a look per changed file, not 100,000 stats a tick. Before it is declared ready,
every file is looked at once more.

Rooms: candidates (the bookkeeping), looking (the named files), reading (the manifest itself),
verdicts (what a decision does), problems (the editor's words); here, input and deciding.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

import structlog

from hotfolder.assemble import grouping, manifest, problems, reading, rules, verdicts
from hotfolder.assemble.candidates import (
    NEVER,
    Book,
    Candidate,
    Known,
    NothingKnown,
    WatchSettings,
)
from hotfolder.assemble.decisions import (
    Decision,
    Failed,
    Gone,
    GoneWhy,
    Ready,
    Waiting,
    decision_id,
    decision_manifest,
)
from hotfolder.assemble.looking import Files, FileSystem, LocalFileSystem
from hotfolder.assemble.reading import MAX_RECHECK
from hotfolder.assemble.stability import StabilityTracker
from hotfolder.beneath import Kind, Look
from hotfolder.ignore import is_ignored
from hotfolder.model import FileIdentity
from hotfolder.model import submission_id as base_id

__all__ = [
    "Decision",
    "Failed",
    "FileSystem",
    "Gone",
    "GoneWhy",
    "Known",
    "LocalFileSystem",
    "NothingKnown",
    "Ready",
    "Waiting",
    "WatchSettings",
    "WatchTracker",
    "is_candidate",
]

log = structlog.get_logger()

#: The shortest pause before looking again at a file that is settled by the clock but still
#: open for writing (its close event usually comes first).
MIN_LOOK = MAX_RECHECK

#: A manifest that came back is looked at again this soon: after its watch has recorded that
#: the earlier one left (decisions are recorded between two checks).
AFTER_LEFT = 0.01


def is_candidate(relpath: PurePosixPath) -> bool:
    return relpath.suffix.lower() in manifest.CANDIDATE_SUFFIXES


class WatchTracker:
    def __init__(self, settings: WatchSettings, fs: FileSystem, known: Known | None = None) -> None:
        self._book = Book(settings, fs, known or NothingKnown())

    @property
    def settings(self) -> WatchSettings:
        return self._book.settings

    @property
    def fs(self) -> FileSystem:
        return self._book.fs

    @property
    def stability(self) -> StabilityTracker:
        return self._book.stability

    # -- input ----------------------------------------------------------------------------

    def on_event(self, relpath: PurePosixPath, now: float, kind: str = "") -> None:
        if is_ignored(relpath.name, self.settings.ignore):
            return
        self.stability.event(relpath, now)
        if kind == "modified":
            self.stability.written(relpath, now)
        elif kind in ("closed", "deleted", "moved"):
            self.stability.closed(relpath)
        if kind in ("deleted", "moved") and relpath in self._book.candidates:
            self._book.candidates[relpath].left = True
        self._touch(relpath, now)

    def on_scan(self, relpaths: Iterable[PurePosixPath], now: float) -> None:
        """A full or partial scan listed these files: pick up manifests events did not show,
        and let waiting manifests look at the files they name."""
        for relpath in relpaths:  # the listing has left ignored names out already
            self._touch(relpath, now, scanned=True)

    def _touch(self, relpath: PurePosixPath, now: float, scanned: bool = False) -> None:
        book = self._book
        if is_candidate(relpath):
            cand = book.candidates.get(relpath)
            if cand is None:
                cand = book.candidates[relpath] = Candidate(relpath, now)
            if not scanned or cand.settled_identity is None:
                book.due.schedule(cand, now)
        for owner in book.claims.owners(relpath):
            cand = book.candidates[owner]
            cand.touched.add(relpath)
            book.due.schedule(cand, now)

    def reconfigure(self, settings: WatchSettings) -> None:
        """New settings from a reload; what is being tracked stays as it is, and is looked at
        again at once, so a new window applies to what already waits by the old one."""
        self._book.settings = settings
        self.stability.window = settings.stability_seconds
        self.stability.writer_cap = settings.max_settle
        for cand in self._book.candidates.values():
            if cand.settled_identity is None:
                self._book.due.schedule(cand, -NEVER)

    def reconsider(self, decision: Decision, when: float) -> None:
        """A decision could not be recorded (a full disk): look at the manifest again. One
        that said a decided manifest left (see _came_back) is said again then: until it is
        recorded, the journal would take what came back for the decided submission."""
        relpath = decision_manifest(decision)
        left = isinstance(decision, Gone) and decision.why is GoneWhy.LEFT
        cand = self._book.candidates.get(relpath)
        if cand is None and left:  # dropped when it left: kept until that is recorded
            cand = self._book.candidates[relpath] = Candidate(relpath, when)
        if cand is not None:
            cand.settled_identity = None
            cand.plan_identity = None
            cand.full = True
            if left:
                cand.decided_id, cand.left = decision_id(decision), True
            self._book.due.schedule(cand, when)

    def prune(self, now: float) -> None:
        """Forget paths only an event ever touched, once the event can no longer matter."""
        self.stability.prune_events(now - 3 * self.settings.stability_seconds - 1)

    def next_due(self) -> float:
        return self._book.due.next()

    @property
    def busy(self) -> bool:
        """Some manifest still needs a look (not yet decided, or waiting for files)."""
        return self.next_due() != NEVER

    @property
    def remembered(self) -> int:
        """Paths the stability bookkeeping holds (for the watch's published snapshot)."""
        return len(self.stability)

    @property
    def waiting(self) -> int:
        return sum(1 for c in self._book.candidates.values() if c.waiting_id is not None)

    # -- decide ---------------------------------------------------------------------------

    def check(self, now: float, everything: bool = False) -> list[Decision]:
        book = self._book
        if everything:
            for cand in book.candidates.values():
                book.due.schedule(cand, now)
        decisions: list[Decision] = []
        while self.next_due() <= now:
            cand = book.due.take()  # looking at it schedules the next look
            try:
                decisions += self._check_one(cand, now)
            except OSError as err:  # the share hiccuped: look again, decide nothing
                log.warning(
                    "cannot look at a manifest; will look again",
                    watch=self.settings.name,
                    manifest=str(cand.relpath),
                    error=str(err),
                )
                book.due.schedule(cand, now + MAX_RECHECK)
            except Exception as err:
                decisions += self._broken(cand, err)
        return decisions

    def _broken(self, cand: Candidate, err: Exception) -> list[Decision]:
        """Evaluating this manifest hit a bug: fail it alone, with a report that does not
        blame the editor, and go on with the others."""
        log.error(
            "a manifest could not be evaluated",
            watch=self.settings.name,
            manifest=str(cand.relpath),
            exc_info=err,
        )
        ident = self.fs.look(self.settings.root, cand.relpath).identity
        if ident is None:
            return verdicts.drop(self._book, cand)
        sid = self._book.known.resolve(self._base_id(cand.relpath, ident))
        if sid is None:
            verdicts.settle(self._book, cand, ident)
            return []
        return [verdicts.fail(self._book, cand, ident, sid, (problems.internal_error(err),))]

    def _base_id(self, relpath: PurePosixPath, ident: FileIdentity) -> str:
        return base_id(self.settings.name, relpath, ident, shared=self.settings.shared)

    def _check_one(self, cand: Candidate, now: float) -> list[Decision]:
        book = self._book
        found = self.fs.look(self.settings.root, cand.relpath)
        ident = found.identity
        if ident is None or found.kind in (Kind.MISSING, Kind.FOLDER):
            return verdicts.drop(book, cand)
        self.stability.observe(cand.relpath, ident, now)
        left, cand.left = cand.left, False
        if left and cand.decided_id is not None:
            return self._came_back(cand, cand.decided_id, now)
        if cand.settled_identity == ident:
            return []
        if cand.sent_id is not None and book.known.in_flight(cand.sent_id):
            # Edited while its submission is being sent: it is a new submission only once
            # that delivery has ended, never a second one sending the same media meanwhile.
            book.due.schedule(cand, now + MAX_RECHECK)
            return []
        cand.sent_id = None
        sid = book.known.resolve(self._base_id(cand.relpath, ident))
        if sid is None:
            verdicts.settle(book, cand, ident)
            return []
        replaced: list[Decision] = []
        if cand.waiting_id not in (None, sid):
            replaced.append(Gone(cand.waiting_id, cand.relpath, GoneWhy.REPLACED))
            cand.waiting_id = None
        decision = self._decide(cand, found, ident, sid, now)
        return replaced + ([decision] if decision is not None else [])

    def _came_back(self, cand: Candidate, decided_id: str, now: float) -> list[Decision]:
        """A decided manifest left the folder and a file is there again before we looked:
        an editor putting the same bytes back (a hard link, or ext4 reusing the inode for a
        `cp -p`) has the same identity but is a new drop. Say it left first; what is there is
        looked at again once that is recorded, so the journal can tell it apart."""
        gone = Gone(decided_id, cand.relpath, GoneWhy.LEFT)
        cand.settled_identity = cand.decided_id = None
        self._book.due.schedule(cand, now + AFTER_LEFT)
        return [gone]

    def _decide(
        self, cand: Candidate, found: Look, ident: FileIdentity, sid: str, now: float
    ) -> Decision | None:
        book = self._book
        if found.kind is not Kind.FILE:
            not_a_file = problems.manifest_not_a_file(cand.relpath, found)
            return verdicts.fail(book, cand, ident, sid, (not_a_file,))
        unsendable = rules.unsendable(str(cand.relpath))
        if unsendable is not None:  # a line break in its own name: it could never be sent
            return verdicts.fail(book, cand, ident, sid, (unsendable,))
        if not self.stability.is_stable(cand.relpath, now):
            return reading.peek(book, cand, ident, sid, now)
        if cand.plan_identity != ident:
            failed = reading.plan(book, cand, ident, sid)
            if failed is not None:
                return failed
        if cand.plan is None:  # not a manifest after all: settled and left alone
            return None
        return self._check_files(cand, cand.plan, ident, sid, now)

    def _check_files(
        self, cand: Candidate, plan: grouping.Plan, ident: FileIdentity, sid: str, now: float
    ) -> Decision:
        book = self._book
        if now - cand.first_seen >= self.settings.incomplete_after:
            cand.full = True
        files = book.looker.files(cand, plan, now)
        taken, older = book.claims.conflicts(cand, now)
        found = [*plan.problems, *files.refused, *taken]
        if found:
            # Everything wrong at once, so the editor fixes it in one go.
            found += [problems.not_here(p) for p in files.missing]
            return verdicts.fail(book, cand, ident, sid, tuple(found), keep=bool(taken))
        if files.missing and now - cand.first_seen >= self.settings.incomplete_after:
            never = problems.never_arrived(files.missing)
            return verdicts.fail(book, cand, ident, sid, (never,))
        if files.missing or files.unsettled or older:
            book.due.schedule(cand, self._next_look(cand, files, bool(older), now))
            return verdicts.wait(cand, sid, files.missing, files.unsettled, older)
        return verdicts.ready(book, cand, plan, ident, sid)

    def _next_look(self, cand: Candidate, files: Files, conflicted: bool, now: float) -> float:
        """Files that settle by the clock are looked at when their window ends; missing files
        only when an event or a scan names them, or at the deadline."""
        at = cand.first_seen + self.settings.incomplete_after
        stable_ats = [t for p in files.unsettled if (t := self.stability.stable_at(p)) is not None]
        if stable_ats:
            # At or past its window, still open for writing: its close event wakes us.
            at = min(at, max(*stable_ats, now + MIN_LOOK))
        if conflicted:
            at = min(at, now + MAX_RECHECK)
        return at
