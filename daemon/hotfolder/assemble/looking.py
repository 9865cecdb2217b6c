"""Looking at the files a manifest names: the FileSystem seam the tracker reads the drop
folder through, and one pass over the named files (which are missing, which still settle,
which can never be sent as they are)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from hotfolder import beneath
from hotfolder.assemble import grouping, problems, rules
from hotfolder.assemble.stability import StabilityTracker
from hotfolder.beneath import Kind, Look
from hotfolder.model import Problem

if TYPE_CHECKING:  # candidates.py builds a Looker: a type only, no import cycle at run time
    from hotfolder.assemble.candidates import Candidate


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


@dataclass(frozen=True, slots=True)
class Files:
    missing: tuple[PurePosixPath, ...]
    unsettled: tuple[PurePosixPath, ...]
    refused: tuple[Problem, ...]  # links, FIFOs, folders, names in another encoding


@dataclass(frozen=True, slots=True)
class Looker:
    """One watch's way of looking: its root, its file system, its stability bookkeeping."""

    root: Path
    fs: FileSystem
    stability: StabilityTracker

    def files(self, cand: Candidate, plan: grouping.Plan, now: float) -> Files:
        """Look at the named files that may have changed (all of them on a full pass); the
        confirming full pass happens by itself before a manifest can be declared ready."""
        named = {f.relpath for f in plan.files}
        to_look = named if cand.full else (cand.unsettled | cand.touched) & named
        cand.touched = set()
        for relpath in to_look:
            found = self.fs.look(self.root, relpath)
            self.stability.observe(relpath, found.identity if found.is_file else None, now)
            problem = self.refusal(relpath, found)
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
            return self.files(cand, plan, now)
        refused = tuple(cand.refused[p] for p in sorted(cand.refused))
        return Files(tuple(sorted(cand.missing)), tuple(sorted(cand.unsettled)), refused)

    def refusal(self, relpath: PurePosixPath, found: Look) -> Problem | None:
        """Why a named file can never be sent as it is, in the editor's words; None if it can
        (or may still arrive)."""
        if found.kind is Kind.LINK:
            return problems.through_a_link(relpath, found.where)
        if found.kind in (Kind.SPECIAL, Kind.FOLDER):
            return problems.not_a_file(relpath, found)
        if found.kind is Kind.MISSING:
            names = self.fs.names(self.root, relpath.parent)
            twin = rules.normalisation_twin(relpath.name, names)
            if twin is not None:
                return rules.twin_problem(str(relpath), twin)
        return None
