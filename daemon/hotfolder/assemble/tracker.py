"""One watch folder's bookkeeping: from events and scans to submissions that are ready to go.

The tracker owns no thread and reads no clock: its watch's thread (and only that thread) feeds
it events, scan results and the current monotonic time, and the file system comes in through
the FileSystem seam. It answers with Decisions (Waiting, Ready, Failed, Gone) and with the time
it next needs looking at, so the watch sleeps exactly until something can change.

A waiting manifest is looked at again only when something it names changes (an event, a scan
that lists the file, a file's stability window ending) or its deadline comes: a 100,000-row
manifest costs a look per changed file, not 100,000 stats a tick. Before it is declared ready,
every file is looked at once more.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

import structlog

from hotfolder import beneath
from hotfolder.assemble import grouping, manifest, rules
from hotfolder.assemble.decisions import Decision, Failed, Gone, GoneWhy, Ready, Waiting
from hotfolder.assemble.stability import StabilityTracker
from hotfolder.beneath import Kind, Look
from hotfolder.ignore import is_ignored
from hotfolder.model import FileIdentity, Manifest, Problem, Submission, SubmissionFile
from hotfolder.model import submission_id as base_id

__all__ = ["Decision", "Failed", "Gone", "GoneWhy", "Ready", "Waiting", "WatchTracker"]

log = structlog.get_logger()

#: How often a manifest re-checks when only time can tell (an open writer, a conflict).
MAX_RECHECK = 2.0
NEVER = float("inf")


class FileSystem(Protocol):
    """The drop folder, seen from its root without following links below it (`beneath`)."""

    def look(self, root: Path, relpath: PurePosixPath) -> Look: ...

    def read(self, root: Path, relpath: PurePosixPath, limit: int) -> bytes: ...

    def names(self, root: Path, folder: PurePosixPath) -> list[str]: ...


class LocalFileSystem:
    def look(self, root: Path, relpath: PurePosixPath) -> Look:
        return beneath.look(root, relpath)

    def read(self, root: Path, relpath: PurePosixPath, limit: int) -> bytes:
        return beneath.read(root, relpath, limit)

    def names(self, root: Path, folder: PurePosixPath) -> list[str]:
        return beneath.names(root, folder)


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


def is_candidate(relpath: PurePosixPath) -> bool:
    return relpath.suffix.lower() in manifest.CANDIDATE_SUFFIXES


@dataclass(frozen=True, slots=True)
class WatchSettings:
    name: str
    root: Path
    stability_seconds: float
    incomplete_after: float = 86400.0
    max_manifest_bytes: int = 10 * 1024 * 1024
    ignore: tuple[str, ...] = ()
    max_settle: float = 3600.0


@dataclass(slots=True)
class _Candidate:
    relpath: PurePosixPath
    first_seen: float
    next_check: float = NEVER
    plan: grouping.Plan | None = None
    plan_identity: FileIdentity | None = None
    settled_identity: FileIdentity | None = None  # decided for this identity: look no more
    waiting_id: str | None = None  # the pending row this candidate stands for
    sent_id: str | None = None  # the submission it became, while its manifest is here
    decided_id: str | None = None  # the submission decided for settled_identity, if known
    refs: frozenset[PurePosixPath] = field(default_factory=frozenset)
    missing: set[PurePosixPath] = field(default_factory=set)
    unsettled: set[PurePosixPath] = field(default_factory=set)
    touched: set[PurePosixPath] = field(default_factory=set)
    refused: dict[PurePosixPath, Problem] = field(default_factory=dict)  # can never be sent
    full: bool = True  # look at every named file next time


@dataclass(frozen=True, slots=True)
class _Files:
    missing: tuple[PurePosixPath, ...]
    unsettled: tuple[PurePosixPath, ...]
    refused: tuple[Problem, ...]  # links, FIFOs, folders, names in another encoding


class WatchTracker:
    def __init__(self, settings: WatchSettings, fs: FileSystem, known: Known | None = None) -> None:
        self.settings = settings
        self.fs = fs
        self.known = known or NothingKnown()
        self.stability = StabilityTracker(settings.stability_seconds, settings.max_settle)
        self._candidates: dict[PurePosixPath, _Candidate] = {}
        self._referenced_by: dict[PurePosixPath, set[PurePosixPath]] = {}  # waiting owners
        self._claimed_by: dict[PurePosixPath, PurePosixPath] = {}  # files of sent manifests
        self._due: list[tuple[float, int, PurePosixPath]] = []  # a heap; stale entries skipped
        self._seq = 0

    # -- input ----------------------------------------------------------------------------

    def on_event(self, relpath: PurePosixPath, now: float, kind: str = "") -> None:
        if is_ignored(relpath.name, self.settings.ignore):
            return
        self.stability.event(relpath, now)
        if kind == "modified":
            self.stability.written(relpath, now)
        elif kind in ("closed", "deleted", "moved"):
            self.stability.closed(relpath)
        self._touch(relpath, now)

    def on_scan(self, relpaths: Iterable[PurePosixPath], now: float) -> None:
        """A full or partial scan listed these files: pick up manifests events did not show,
        and let waiting manifests look at the files they name."""
        for relpath in relpaths:
            if not is_ignored(relpath.name, self.settings.ignore):
                self._touch(relpath, now, scanned=True)

    def _touch(self, relpath: PurePosixPath, now: float, scanned: bool = False) -> None:
        if is_candidate(relpath):
            cand = self._candidates.get(relpath)
            if cand is None:
                cand = self._candidates[relpath] = _Candidate(relpath, now)
            if not scanned or cand.settled_identity is None:
                self._schedule(cand, now)
        for owner in self._referenced_by.get(relpath, ()):
            cand = self._candidates[owner]
            cand.touched.add(relpath)
            self._schedule(cand, now)

    def reconfigure(self, settings: WatchSettings) -> None:
        """New settings from a reload; what is being tracked stays as it is."""
        self.settings = settings
        self.stability.window = settings.stability_seconds
        self.stability.writer_cap = settings.max_settle

    def reconsider(self, relpath: PurePosixPath, when: float) -> None:
        """A decision could not be recorded (a full disk): look at the manifest again."""
        cand = self._candidates.get(relpath)
        if cand is not None:
            cand.settled_identity = None
            cand.plan_identity = None
            cand.full = True
            self._schedule(cand, when)

    def prune(self, now: float) -> None:
        """Forget paths only an event ever touched, once the event can no longer matter."""
        self.stability.prune_events(now - 3 * self.settings.stability_seconds - 1)

    def next_due(self) -> float:
        while self._due:
            at, _, relpath = self._due[0]
            cand = self._candidates.get(relpath)
            if cand is not None and cand.next_check == at:
                return at
            heapq.heappop(self._due)
        return NEVER

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
        return sum(1 for c in self._candidates.values() if c.waiting_id is not None)

    def _schedule(self, cand: _Candidate, at: float) -> None:
        if at < cand.next_check:
            cand.next_check = at
            self._seq += 1
            heapq.heappush(self._due, (at, self._seq, cand.relpath))

    # -- decide ---------------------------------------------------------------------------

    def check(self, now: float, everything: bool = False) -> list[Decision]:
        if everything:
            for cand in self._candidates.values():
                self._schedule(cand, now)
        decisions: list[Decision] = []
        while self.next_due() <= now:
            _, _, relpath = heapq.heappop(self._due)
            cand = self._candidates[relpath]
            cand.next_check = NEVER  # taken; looking at it schedules the next look
            try:
                decisions += self._check_one(cand, now)
            except OSError as err:  # the share hiccuped: look again, decide nothing
                log.warning(
                    "cannot look at a manifest; will look again",
                    watch=self.settings.name,
                    manifest=str(relpath),
                    error=str(err),
                )
                self._schedule(cand, now + MAX_RECHECK)
            except Exception as err:
                decisions += self._broken(cand, err)
        return decisions

    def _broken(self, cand: _Candidate, err: Exception) -> list[Decision]:
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
            return self._drop(cand)
        sid = self.known.resolve(base_id(self.settings.name, cand.relpath, ident))
        if sid is None:
            self._settle(cand, ident)
            return []
        problem = Problem(
            "internal-error",
            f"hotfolder could not evaluate this manifest ({type(err).__name__})",
            "this is a fault in hotfolder, not in your drop; the administrator can see it in "
            "the log; drop the manifest again once it is fixed",
        )
        return [self._fail(cand, ident, sid, (problem,))]

    def _check_one(self, cand: _Candidate, now: float) -> list[Decision]:
        found = self.fs.look(self.settings.root, cand.relpath)
        ident = found.identity
        if ident is None or found.kind in (Kind.MISSING, Kind.FOLDER):
            return self._drop(cand)
        self.stability.observe(cand.relpath, ident, now)
        if cand.settled_identity == ident:
            return []
        if cand.sent_id is not None and self.known.in_flight(cand.sent_id):
            # Edited while its submission is being sent: it is a new submission only once
            # that delivery has ended, never a second one sending the same media meanwhile.
            self._schedule(cand, now + MAX_RECHECK)
            return []
        cand.sent_id = None
        sid = self.known.resolve(base_id(self.settings.name, cand.relpath, ident))
        if sid is None:
            self._settle(cand, ident)
            return []
        replaced: list[Decision] = []
        if cand.waiting_id not in (None, sid):
            replaced.append(Gone(cand.waiting_id, cand.relpath, GoneWhy.REPLACED))
            cand.waiting_id = None
        decision = self._decide(cand, found, ident, sid, now)
        return replaced + ([decision] if decision is not None else [])

    def _decide(
        self, cand: _Candidate, found: Look, ident: FileIdentity, sid: str, now: float
    ) -> Decision | None:
        if found.kind is not Kind.FILE:
            # A link is never followed (it could name a password file), a FIFO never opened.
            what = "a link to another file" if found.kind is Kind.LINK else found.where
            return self._fail(
                cand,
                ident,
                sid,
                (
                    Problem(
                        "manifest-not-a-file",
                        f"the manifest '{cand.relpath}' is {what}",
                        "copy the manifest file itself into the drop folder; links are not "
                        "followed",
                        path=str(cand.relpath),
                    ),
                ),
            )
        unsendable = rules.unsendable(str(cand.relpath))
        if unsendable is not None:  # a line break in its own name: it could never be sent
            return self._fail(cand, ident, sid, (unsendable,))
        if not self.stability.is_stable(cand.relpath, now):
            return self._peek(cand, ident, sid, now)
        if cand.plan_identity != ident:
            failed = self._plan(cand, ident, sid)
            if failed is not None or cand.plan is None:
                return failed
        return self._check_files(cand, ident, sid, now)

    def _peek(self, cand: _Candidate, ident: FileIdentity, sid: str, now: float) -> Waiting:
        """The manifest is still settling: read it anyway, so that the files it names start
        their own stability window now rather than once the manifest has settled. Nothing is
        decided from an unsettled manifest; a parse error here just means 'look again'."""
        if cand.plan_identity != ident and ident.size <= self.settings.max_manifest_bytes:
            try:
                data = self.fs.read(self.settings.root, cand.relpath, ident.size)
                parsed = manifest.parse(data, cand.relpath.name)
            except (manifest.ManifestError, manifest.NotAManifest, OSError):
                pass
            else:
                self._adopt(cand, ident, parsed)
        missing: tuple[PurePosixPath, ...] = ()
        if cand.plan is not None and cand.plan_identity == ident:
            missing = self._look_files(cand, now).missing
        self._schedule(cand, self.stability.stable_at(cand.relpath) or now + MAX_RECHECK)
        return self._wait(cand, sid, missing, (cand.relpath,))

    def _plan(self, cand: _Candidate, ident: FileIdentity, sid: str) -> Failed | Gone | None:
        """Parse the manifest: a Failed if it is unusable, None once it is planned (or, if it
        is not a manifest at all, settled and left alone)."""
        limit = self.settings.max_manifest_bytes
        if ident.size > limit:
            return self._fail(
                cand,
                ident,
                sid,
                (
                    Problem(
                        "manifest-too-large",
                        f"the manifest is {ident.size} bytes (limit {limit})",
                        "check this is really the manifest; raise max_manifest_bytes if it is",
                    ),
                ),
            )
        try:
            data = self.fs.read(self.settings.root, cand.relpath, limit + 1)
            parsed = manifest.parse(data, cand.relpath.name)
        except manifest.NotAManifest:
            waiting = cand.waiting_id
            self._settle(cand, ident)
            return Gone(waiting, cand.relpath, GoneWhy.NOT_A_MANIFEST) if waiting else None
        except manifest.ManifestError as err:
            problem = Problem(err.code, err.message, err.hint, str(cand.relpath), err.line)
            return self._fail(cand, ident, sid, (problem,))
        except OSError as err:
            return self._fail(
                cand,
                ident,
                sid,
                (
                    Problem(
                        "unreadable-manifest",
                        f"cannot read the manifest: {err.strerror}",
                        "check the file's permissions",
                    ),
                ),
            )
        self._adopt(cand, ident, parsed)
        return None

    def _adopt(self, cand: _Candidate, ident: FileIdentity, parsed: Manifest) -> None:
        """Group the parsed manifest, and start following the files it names."""
        cand.plan = grouping.plan(cand.relpath, parsed)
        cand.plan_identity = ident
        cand.full = True
        self._index_refs(cand, frozenset(f.relpath for f in cand.plan.files))

    def _check_files(self, cand: _Candidate, ident: FileIdentity, sid: str, now: float) -> Decision:
        assert cand.plan is not None
        if now - cand.first_seen >= self.settings.incomplete_after:
            cand.full = True
        files = self._look_files(cand, now)
        taken, older = self._conflicts(cand, now)
        problems = [*cand.plan.problems, *files.refused, *taken]
        if problems:
            # Everything wrong at once, so the editor fixes it in one go.
            problems += [_not_here(p) for p in files.missing]
            return self._fail(cand, ident, sid, tuple(problems), keep=bool(taken))
        if files.missing and now - cand.first_seen >= self.settings.incomplete_after:
            return self._fail(cand, ident, sid, (_never_arrived(files.missing),))
        if files.missing or files.unsettled or older:
            self._schedule(cand, self._next_look(cand, files, bool(older), now))
            return self._wait(cand, sid, files.missing, files.unsettled, older)
        return self._ready(cand, ident, sid)

    def _next_look(self, cand: _Candidate, files: _Files, conflicted: bool, now: float) -> float:
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

    def _look_files(self, cand: _Candidate, now: float) -> _Files:
        """Look at the named files that may have changed (all of them on a full pass); the
        confirming full pass happens by itself before a manifest can be declared ready."""
        assert cand.plan is not None
        named = {f.relpath for f in cand.plan.files}
        to_look = named if cand.full else (cand.unsettled | cand.touched) & named
        cand.touched = set()
        for relpath in to_look:
            found = self.fs.look(self.settings.root, relpath)
            self.stability.observe(relpath, found.identity if found.is_file else None, now)
            problem = self._refusal(relpath, found)
            if problem is None:
                cand.refused.pop(relpath, None)
            else:
                cand.refused[relpath] = problem
        looked_missing = {
            p for p in to_look if self.stability.identity(p) is None and p not in cand.refused
        }
        cand.missing = looked_missing | (cand.missing - to_look)
        cand.unsettled = {
            p for p in to_look - looked_missing if not self.stability.is_stable(p, now)
        }
        was_full, cand.full = cand.full, False
        if not was_full and not cand.missing and not cand.unsettled and not cand.refused:
            cand.full = True
            return self._look_files(cand, now)
        refused = tuple(cand.refused[p] for p in sorted(cand.refused))
        return _Files(tuple(sorted(cand.missing)), tuple(sorted(cand.unsettled)), refused)

    def _refusal(self, relpath: PurePosixPath, found: Look) -> Problem | None:
        """Why a named file can never be sent as it is, in the editor's words; None if it can
        (or may still arrive)."""
        if found.kind is Kind.LINK:
            return Problem(
                "path-escapes",
                f"'{relpath}' goes through a link ('{found.where}'), which may "
                "point outside the drop folder",
                "copy the file itself into the drop folder; links are not followed",
                path=str(relpath),
            )
        if found.kind in (Kind.SPECIAL, Kind.FOLDER):
            what = "a folder" if found.kind is Kind.FOLDER else found.where
            return Problem(
                "not-a-file",
                f"'{relpath}' is {what}, not a file",
                "put the file itself there under that name",
                path=str(relpath),
            )
        if found.kind is Kind.MISSING:
            names = self.fs.names(self.settings.root, relpath.parent)
            twin = rules.normalisation_twin(relpath.name, names)
            if twin is not None:
                return rules.twin_problem(str(relpath), twin)
        return None

    def _conflicts(
        self, cand: _Candidate, now: float
    ) -> tuple[list[Problem], tuple[PurePosixPath, ...]]:
        """(problems if this manifest loses a conflict, older manifests it waits for). A file
        goes with one manifest: one already sent or being sent keeps it, and of two waiting
        manifests the one seen first keeps it; the newer one fails at once, naming the other."""
        problems, older = [], set()
        me = (cand.first_seen, cand.relpath)
        for ref in sorted(cand.refs):
            holder = self._claimed_by.get(ref)
            if holder is not None and holder != cand.relpath:
                problems.append(_conflict(ref, holder, "was already sent with"))
                continue
            for other in self._referenced_by.get(ref, ()):
                if other == cand.relpath:
                    continue
                rival = self._candidates[other]
                if (rival.first_seen, rival.relpath) < me:
                    problems.append(_conflict(ref, other, "is already named by"))
                else:
                    older.add(other)
                    self._schedule(rival, now)  # the newer one fails at its next look
        return problems, tuple(sorted(older)) if not problems else ()

    # -- outcomes -------------------------------------------------------------------------

    def _wait(
        self,
        cand: _Candidate,
        sid: str,
        missing: tuple[PurePosixPath, ...],
        unsettled: tuple[PurePosixPath, ...],
        conflicts: tuple[PurePosixPath, ...] = (),
    ) -> Waiting:
        cand.waiting_id = sid
        fmt = cand.plan.manifest.format if cand.plan else None
        return Waiting(sid, cand.relpath, missing, unsettled, fmt, conflicts, cand.first_seen)

    def _ready(self, cand: _Candidate, ident: FileIdentity, sid: str) -> Ready:
        assert cand.plan is not None
        media = []
        for f in cand.plan.files:
            pinned = self.stability.identity(f.relpath)
            assert pinned is not None  # _look_files just found every file present and stable
            media.append(SubmissionFile(f.relpath, f.dest, pinned))
            self._claimed_by[f.relpath] = cand.relpath
        manifest_file = SubmissionFile(cand.relpath, PurePosixPath(cand.relpath.name), ident)
        assets = tuple((item.guid, item.title) for item in cand.plan.manifest.items)
        fmt = cand.plan.manifest.format
        self._settle(cand, ident, sid)
        cand.sent_id = sid
        return Ready(Submission(sid, self.settings.name, manifest_file, tuple(media), fmt), assets)

    def _fail(
        self,
        cand: _Candidate,
        ident: FileIdentity,
        sid: str,
        problems: tuple[Problem, ...],
        keep: bool = False,
    ) -> Failed:
        """`keep`: the files stay where they are (another manifest has them)."""
        planned = cand.plan.files if cand.plan and not keep else ()
        # Links and special files were observed as absent: they are never moved.
        present = tuple(f.relpath for f in planned if self.stability.identity(f.relpath))
        fmt = cand.plan.manifest.format if cand.plan else None
        self._settle(cand, ident, sid)
        return Failed(sid, cand.relpath, problems, present, fmt)

    def _settle(self, cand: _Candidate, ident: FileIdentity, sid: str | None = None) -> None:
        cand.settled_identity = ident
        cand.decided_id = sid
        cand.waiting_id = None
        cand.next_check = NEVER
        self._forget_refs(cand)

    def _forget_refs(self, cand: _Candidate) -> None:
        for ref in cand.refs:
            if len(self._referenced_by.get(ref, ())) <= 1:
                self.stability.forget(ref)
        self._index_refs(cand, frozenset())
        cand.plan_identity = None
        cand.missing, cand.unsettled, cand.touched = set(), set(), set()
        cand.refused = {}

    def _drop(self, cand: _Candidate) -> list[Decision]:
        del self._candidates[cand.relpath]
        for ref, holder in list(self._claimed_by.items()):
            if holder == cand.relpath:
                del self._claimed_by[ref]
        self._forget_refs(cand)
        self.stability.forget(cand.relpath)
        if cand.waiting_id is not None:
            return [Gone(cand.waiting_id, cand.relpath)]
        if cand.decided_id is not None:
            return [Gone(cand.decided_id, cand.relpath, GoneWhy.LEFT)]
        return []

    def _index_refs(self, cand: _Candidate, refs: frozenset[PurePosixPath]) -> None:
        for old in cand.refs - refs:
            owners = self._referenced_by.get(old)
            if owners is not None:
                owners.discard(cand.relpath)
                for owner in owners:  # a conflict may be over: let them look now
                    self._schedule(self._candidates[owner], -NEVER)
                if not owners:
                    del self._referenced_by[old]
        for new in refs:
            self._referenced_by.setdefault(new, set()).add(cand.relpath)
        cand.refs = refs


#: The shortest pause before looking again at a file that is settled by the clock but still
#: open for writing (its close event usually comes first).
MIN_LOOK = MAX_RECHECK


def _not_here(relpath: PurePosixPath) -> Problem:
    return Problem(
        "missing-file",
        f"'{relpath}' is not in the drop folder",
        "copy it next to the manifest",
        path=str(relpath),
    )


def _never_arrived(missing: Iterable[PurePosixPath]) -> Problem:
    return Problem(
        "incomplete",
        "files named in the manifest never arrived: " + ", ".join(str(p) for p in missing),
        "copy the missing files into the drop folder "
        "next to the manifest, then drop the manifest again",
    )


def _conflict(ref: PurePosixPath, other: PurePosixPath, how: str) -> Problem:
    return Problem(
        "conflict",
        f"'{ref}' {how} the manifest '{other}'",
        "a file can go with one "
        "manifest only; name another file, or remove the other manifest first",
        path=str(ref),
    )
