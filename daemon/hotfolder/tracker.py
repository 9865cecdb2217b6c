"""One watch folder's bookkeeping: from events and scans to submissions that are ready to go.

The tracker owns no thread and reads no clock: the daemon feeds it events, scan results and the
current monotonic time, and the filesystem comes in through the FileSystem seam. It answers with
Decisions (Waiting, Ready, Failed, Gone) and with the time it next needs looking at, so the daemon
sleeps exactly until something can change.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from hotfolder import grouping, manifest
from hotfolder.ignore import is_ignored
from hotfolder.model import (
    FileIdentity,
    Manifest,
    ManifestFormat,
    Problem,
    Submission,
    SubmissionFile,
    submission_id,
)
from hotfolder.stability import StabilityTracker

#: How often a waiting manifest re-checks files that events may never announce (NFS, SMB).
MAX_RECHECK = 2.0


class FileSystem(Protocol):
    def identity(self, path: Path) -> FileIdentity | None:
        """The file's identity, or None if it is not there (or not a regular file)."""

    def escapes(self, path: Path, root: Path) -> bool:
        """True if `path` is a symlink whose target lies outside `root`."""

    def read(self, path: Path, limit: int) -> bytes:
        """At most `limit` bytes of the file."""


class LocalFileSystem:
    def identity(self, path: Path) -> FileIdentity | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileIdentity.of(st) if stat.S_ISREG(st.st_mode) else None

    def escapes(self, path: Path, root: Path) -> bool:
        if not path.is_symlink():
            return False
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        return os.path.commonpath([real_root, real]) != real_root

    def read(self, path: Path, limit: int) -> bytes:
        with open(path, "rb") as f:
            return f.read(limit)


def is_candidate(relpath: PurePosixPath) -> bool:
    return relpath.suffix.lower() in manifest.CANDIDATE_SUFFIXES


# -- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    submission_id: str
    manifest: PurePosixPath
    missing: tuple[PurePosixPath, ...] = ()
    unsettled: tuple[PurePosixPath, ...] = ()
    format: ManifestFormat | None = None
    conflicts: tuple[PurePosixPath, ...] = ()  # other waiting manifests naming the same files
    since: float = 0.0  # when the manifest was first seen (monotonic)


@dataclass(frozen=True, slots=True)
class Ready:
    submission: Submission
    assets: tuple[tuple[str | None, str | None], ...] = ()  # (guid, title) per item


@dataclass(frozen=True, slots=True)
class Failed:
    submission_id: str
    manifest: PurePosixPath
    problems: tuple[Problem, ...]
    present: tuple[PurePosixPath, ...]  # files to quarantine with the manifest
    format: ManifestFormat | None = None


@dataclass(frozen=True, slots=True)
class Gone:
    """A manifest we were waiting on disappeared before it was sent (editor took it back)."""

    submission_id: str
    manifest: PurePosixPath


Decision = Waiting | Ready | Failed | Gone


@dataclass(slots=True)
class _Candidate:
    relpath: PurePosixPath
    first_seen: float
    next_check: float
    plan: grouping.Plan | None = None
    plan_identity: FileIdentity | None = None
    settled_identity: FileIdentity | None = None  # decided for this identity: look no more
    waiting_id: str | None = None
    refs: frozenset[PurePosixPath] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    name: str
    root: Path
    stability_seconds: float
    incomplete_after: float = 86400.0
    max_manifest_bytes: int = 10 * 1024 * 1024
    ignore: tuple[str, ...] = ()
    max_settle: float = 3600.0


class WatchTracker:
    def __init__(
        self,
        settings: WatchSettings,
        fs: FileSystem,
        is_settled: Callable[[str], bool] = lambda _id: False,
    ) -> None:
        self.settings = settings
        self.fs = fs
        self.is_settled = is_settled  # the journal already has this submission id
        self.stability = StabilityTracker(settings.stability_seconds, settings.max_settle)
        self._candidates: dict[PurePosixPath, _Candidate] = {}
        self._referenced_by: dict[PurePosixPath, set[PurePosixPath]] = {}

    # -- input ----------------------------------------------------------------------------

    def on_event(self, relpath: PurePosixPath, now: float, kind: str = "") -> None:
        if is_ignored(relpath.name, self.settings.ignore):
            return
        self.stability.event(relpath, now)
        if kind == "modified":
            self.stability.written(relpath, now)
        elif kind in ("closed", "deleted", "moved"):
            self.stability.closed(relpath)
        if is_candidate(relpath):
            self._ensure(relpath, now).next_check = now
        for owner in self._referenced_by.get(relpath, ()):
            self._candidates[owner].next_check = now

    def on_scan(self, relpaths: Iterable[PurePosixPath], now: float) -> None:
        """A full or partial scan listed these files: pick up manifests events did not show."""
        for relpath in relpaths:
            if is_candidate(relpath) and not is_ignored(relpath.name, self.settings.ignore):
                self._ensure(relpath, now)
        for cand in self._candidates.values():
            if cand.settled_identity is None:
                cand.next_check = min(cand.next_check, now)

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
            cand.next_check = when

    def next_due(self) -> float:
        return min((c.next_check for c in self._candidates.values()), default=float("inf"))

    @property
    def busy(self) -> bool:
        """Some manifest still needs a look (not yet decided, or waiting for files)."""
        return self.next_due() != float("inf")

    @property
    def waiting(self) -> int:
        return sum(1 for c in self._candidates.values() if c.waiting_id is not None)

    # -- decide ---------------------------------------------------------------------------

    def check(self, now: float, everything: bool = False) -> list[Decision]:
        due = [c for c in self._candidates.values() if everything or c.next_check <= now]
        decisions = []
        for cand in due:
            decision = self._check_one(cand, now)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _ensure(self, relpath: PurePosixPath, now: float) -> _Candidate:
        cand = self._candidates.get(relpath)
        if cand is None:
            cand = self._candidates[relpath] = _Candidate(relpath, now, now)
        return cand

    def _check_one(self, cand: _Candidate, now: float) -> Decision | None:
        root = self.settings.root
        ident = self.fs.identity(root / cand.relpath)
        self.stability.observe(cand.relpath, ident, now)
        if ident is None:
            return self._drop(cand)
        if cand.settled_identity == ident:
            cand.next_check = float("inf")
            return None
        sid = submission_id(self.settings.name, cand.relpath, ident)
        if self.is_settled(sid):
            self._settle(cand, ident)
            return None
        return self._decide(cand, ident, sid, now)

    def _decide(
        self, cand: _Candidate, ident: FileIdentity, sid: str, now: float
    ) -> Decision | None:
        if not self.stability.is_stable(cand.relpath, now):
            return self._peek(cand, ident, sid, now)
        if cand.plan_identity != ident:
            outcome = self._plan(cand, ident)
            if outcome is not None:
                return outcome if isinstance(outcome, Failed) else None
        assert cand.plan is not None
        if cand.plan.problems:
            return self._fail(cand, ident, sid, cand.plan.problems)
        return self._check_files(cand, ident, sid, now)

    def _peek(self, cand: _Candidate, ident: FileIdentity, sid: str, now: float) -> Waiting:
        """The manifest is still settling: read it anyway, so that the files it names start
        their own stability window now rather than once the manifest has settled. Nothing is
        decided from an unsettled manifest; a parse error here just means 'look again'."""
        if cand.plan_identity != ident and ident.size <= self.settings.max_manifest_bytes:
            try:
                data = self.fs.read(self.settings.root / cand.relpath, ident.size)
                parsed = manifest.parse(data, cand.relpath.name)
            except (manifest.ManifestError, manifest.NotAManifest, OSError):
                pass
            else:
                self._adopt(cand, ident, parsed)
        missing = []
        if cand.plan is not None and cand.plan_identity == ident:
            for f in cand.plan.files:
                found = self.fs.identity(self.settings.root / f.relpath)
                self.stability.observe(f.relpath, found, now)
                if found is None:
                    missing.append(f.relpath)
        cand.next_check = self.stability.stable_at(cand.relpath) or now + MAX_RECHECK
        return self._wait(cand, sid, tuple(missing), (cand.relpath,))

    def _plan(self, cand: _Candidate, ident: FileIdentity) -> Failed | bool | None:
        """Parse the manifest; a Failed if it is unusable, True if it is not a manifest."""
        sid = submission_id(self.settings.name, cand.relpath, ident)
        path = self.settings.root / cand.relpath
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
            parsed = manifest.parse(self.fs.read(path, limit + 1), cand.relpath.name)
        except manifest.NotAManifest:
            self._settle(cand, ident)
            return True
        except manifest.ManifestError as err:
            return self._fail(
                cand,
                ident,
                sid,
                (Problem(err.code, err.message, err.hint, str(cand.relpath), err.line),),
            )
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
        self._index_refs(cand, frozenset(f.relpath for f in cand.plan.files))

    def _check_files(self, cand: _Candidate, ident: FileIdentity, sid: str, now: float) -> Decision:
        assert cand.plan is not None
        root = self.settings.root
        missing, unsettled, escaping = [], [], []
        for f in cand.plan.files:
            if self.fs.escapes(root / f.relpath, root):
                escaping.append(f.relpath)
                continue
            self.stability.observe(f.relpath, self.fs.identity(root / f.relpath), now)
            if self.stability.identity(f.relpath) is None:
                missing.append(f.relpath)
            elif not self.stability.is_stable(f.relpath, now):
                unsettled.append(f.relpath)
        if escaping:
            return self._fail(
                cand,
                ident,
                sid,
                tuple(
                    Problem(
                        "path-escapes",
                        f"'{p}' is a link to a place outside the drop folder",
                        "copy the file itself into the drop folder",
                        path=str(p),
                    )
                    for p in escaping
                ),
            )
        conflicts = self._conflicts(cand)
        if (missing or conflicts) and now - cand.first_seen >= self.settings.incomplete_after:
            # Files another manifest also names stay in the drop folder for that manifest.
            return self._fail(
                cand,
                ident,
                sid,
                (self._incomplete(missing, conflicts),),
                keep_files=bool(conflicts),
            )
        if missing or unsettled or conflicts:
            soonest = [t for p in unsettled if (t := self.stability.stable_at(p)) is not None]
            latest = max(soonest, default=now + MAX_RECHECK)
            if latest <= now:  # settled by the clock, still open for writing: its close wakes us
                latest = now + MAX_RECHECK
            cand.next_check = (
                now + min(MAX_RECHECK, self.settings.stability_seconds)
                if missing or conflicts
                else latest
            )
            return self._wait(cand, sid, tuple(missing), tuple(unsettled), conflicts)
        return self._ready(cand, ident, sid)

    def _conflicts(self, cand: _Candidate) -> tuple[PurePosixPath, ...]:
        """Other manifests, not yet sent, that name one of this manifest's files: sending
        either would take the file from the other, so both wait until one is withdrawn."""
        others = {
            o for ref in cand.refs for o in self._referenced_by.get(ref, ()) if o != cand.relpath
        }
        return tuple(sorted(others))

    @staticmethod
    def _incomplete(missing: list[PurePosixPath], conflicts: tuple[PurePosixPath, ...]) -> Problem:
        if missing:
            return Problem(
                "incomplete",
                "files named in the manifest never arrived: " + ", ".join(str(p) for p in missing),
                "copy the missing files into the drop folder next to the manifest, then drop "
                "the manifest again",
            )
        return Problem(
            "conflict",
            "files are also named by other manifests: " + ", ".join(str(p) for p in conflicts),
            "a file can go with one manifest only; remove or fix one of the manifests",
        )

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
        media = tuple(
            SubmissionFile(f.relpath, f.dest, self._identity(f.relpath)) for f in cand.plan.files
        )
        manifest_file = SubmissionFile(cand.relpath, PurePosixPath(cand.relpath.name), ident)
        assets = tuple((item.guid, item.title) for item in cand.plan.manifest.items)
        fmt = cand.plan.manifest.format
        self._settle(cand, ident)
        return Ready(Submission(sid, self.settings.name, manifest_file, media, fmt), assets)

    def _identity(self, relpath: PurePosixPath) -> FileIdentity:
        ident = self.stability.identity(relpath)
        assert ident is not None
        return ident

    def _fail(
        self,
        cand: _Candidate,
        ident: FileIdentity,
        sid: str,
        problems: tuple[Problem, ...],
        keep_files: bool = False,
    ) -> Failed:
        present = (
            ()
            if keep_files
            else tuple(
                f.relpath
                for f in (cand.plan.files if cand.plan else ())
                if self.stability.identity(f.relpath) is not None
            )
        )
        fmt = cand.plan.manifest.format if cand.plan else None
        self._settle(cand, ident)
        return Failed(sid, cand.relpath, problems, present, fmt)

    def _settle(self, cand: _Candidate, ident: FileIdentity) -> None:
        cand.settled_identity = ident
        cand.waiting_id = None
        cand.next_check = float("inf")
        self._forget_refs(cand)

    def _forget_refs(self, cand: _Candidate) -> None:
        for ref in cand.refs:
            if len(self._referenced_by.get(ref, ())) <= 1:
                self.stability.forget(ref)
        self._index_refs(cand, frozenset())
        cand.plan_identity = None

    def _drop(self, cand: _Candidate) -> Gone | None:
        del self._candidates[cand.relpath]
        self._forget_refs(cand)
        self.stability.forget(cand.relpath)
        if cand.waiting_id is not None:
            return Gone(cand.waiting_id, cand.relpath)
        return None

    def _index_refs(self, cand: _Candidate, refs: frozenset[PurePosixPath]) -> None:
        for old in cand.refs - refs:
            owners = self._referenced_by.get(old)
            if owners is not None:
                owners.discard(cand.relpath)
                if not owners:
                    del self._referenced_by[old]
        for new in refs:
            self._referenced_by.setdefault(new, set()).add(cand.relpath)
        cand.refs = refs
