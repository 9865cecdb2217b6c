"""What a watch's tracker decides about a manifest, as plain data the daemon acts on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from hotfolder.model import ManifestFormat, Problem, Submission


@dataclass(frozen=True, slots=True)
class Waiting:
    submission_id: str
    manifest: PurePosixPath
    missing: tuple[PurePosixPath, ...] = ()
    unsettled: tuple[PurePosixPath, ...] = ()
    format: ManifestFormat | None = None
    conflicts: tuple[PurePosixPath, ...] = ()  # older manifests naming the same files
    since: float = 0.0  # when the manifest was first seen (monotonic)


@dataclass(frozen=True, slots=True)
class Ready:
    submission: Submission
    assets: tuple[tuple[str | None, str | None], ...] = ()  # (guid, title) per item
    priority: int | None = None  # the manifest's own, if it says one


@dataclass(frozen=True, slots=True)
class Failed:
    submission_id: str
    manifest: PurePosixPath
    problems: tuple[Problem, ...]
    present: tuple[PurePosixPath, ...]  # files to quarantine with the manifest
    format: ManifestFormat | None = None


class GoneWhy(StrEnum):
    REMOVED = "removed"  # the editor took the manifest back before it was sent
    REPLACED = "replaced"  # the manifest changed while waiting: it is a new submission now
    NOT_A_MANIFEST = "not-a-manifest"  # once complete, it turned out to be something else
    LEFT = "left"  # a decided submission's manifest left the drop folder (archived, deleted)


@dataclass(frozen=True, slots=True)
class Gone:
    """A manifest that is no longer there (or no longer one): a pending row is closed; for a
    decided submission (LEFT) the same bytes dropped again are a new submission."""

    submission_id: str
    manifest: PurePosixPath
    why: GoneWhy = GoneWhy.REMOVED


Decision = Waiting | Ready | Failed | Gone


def decision_id(decision: Decision) -> str:
    return decision.submission.id if isinstance(decision, Ready) else decision.submission_id


def decision_manifest(decision: Decision) -> PurePosixPath:
    return (
        decision.submission.manifest.relpath if isinstance(decision, Ready) else decision.manifest
    )
