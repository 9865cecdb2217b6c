"""From a parsed manifest to the set of local files that make one submission.

Pure: turns each reference into a path inside the watch folder (relative to the manifest's own
folder, where the ingest server will look for it), refusing anything that could leave the folder.
Whether the files exist and are stable is the stability stage's question, not this one's.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath

from hotfolder.assemble import rules
from hotfolder.model import Manifest, Problem, RefKind
from hotfolder.report import excerpt


@dataclass(frozen=True, slots=True)
class PlannedFile:
    relpath: PurePosixPath  # relative to the watch folder
    dest: PurePosixPath  # relative to the manifest's folder: its name at the target
    kind: RefKind


@dataclass(frozen=True, slots=True)
class Plan:
    manifest_relpath: PurePosixPath
    manifest: Manifest
    files: tuple[PlannedFile, ...]
    problems: tuple[Problem, ...]


def plan(manifest_relpath: PurePosixPath, manifest: Manifest) -> Plan:
    problems = rules.check(manifest)
    files: dict[PurePosixPath, PlannedFile] = {}
    bad_refs = {p.path for p in problems}
    base = manifest_relpath.parent
    for ref in manifest.references:
        if rules.is_remote(ref.name) or ref.name in bad_refs:
            continue
        dest = PurePosixPath(posixpath.normpath(ref.name))
        relpath = PurePosixPath(posixpath.normpath(base / dest))
        if not _inside(relpath, base):
            # The rules refuse every escape they know; this is the last line, not the first.
            problems.append(
                Problem(
                    "path-escapes",
                    f"'{excerpt(ref.name)}' points outside the manifest's folder",
                    "put the file next to the manifest and name it without '..' or '/' first",
                    path=ref.name,
                    line=ref.line,
                )
            )
            continue
        if relpath == manifest_relpath:
            problems.append(
                Problem(
                    "self-reference",
                    f"'{excerpt(ref.name)}' is the manifest itself",
                    "reference the media files, not the manifest",
                    path=ref.name,
                    line=ref.line,
                )
            )
            continue
        files.setdefault(relpath, PlannedFile(relpath, dest, ref.kind))
    return Plan(manifest_relpath, manifest, tuple(files.values()), tuple(problems))


def _inside(relpath: PurePosixPath, base: PurePosixPath) -> bool:
    return (
        not relpath.is_absolute()
        and ".." not in relpath.parts
        and relpath != base
        and relpath.is_relative_to(base)
    )
