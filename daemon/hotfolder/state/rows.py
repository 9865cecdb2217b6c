"""A journal's rows and rules, whatever keeps them (SQLite here, PostgreSQL for fleets): the
row as callers read it, which state may be left for which (ALLOWED_FROM), and how much of a
message or a list of problems is kept."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from hotfolder.model import (
    FINAL,
    FileIdentity,
    ManifestFormat,
    Problem,
    State,
    Submission,
    SubmissionFile,
)

#: The most the journal keeps of one error message or history note (a 100k-row CSV once made
#: a 1.4 MB one); the report and the log say the rest.
MAX_NOTE = 2000
#: The most problems kept per failed submission (one per CSV row can be 100,000).
MAX_PROBLEMS = 50


class JournalHealth(StrEnum):
    """Is the file we write still the journal at `path`? (`Journal.healthy`)"""

    OK = "ok"
    MISSING = "missing"  # deleted (or moved away) while open: writes go to an unlinked file
    REPLACED = "replaced"  # another file now has its name: writes go to the old one


def cap(text: str, limit: int = MAX_NOTE) -> str:
    """At most `limit` characters of `text`, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


#: Between a submission's base id and its generation: `ep1-0a1b2c3d4e~2`.
GENERATION_MARK = "~"


class StaleTransition(Exception):
    """The submission was not in a state this transition may leave."""


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    watch: str
    manifest: str
    format: str | None
    state: State
    files: list[dict[str, Any]]
    bytes_total: int
    bytes_done: int
    attempts: int
    error_code: str | None
    error_message: str | None
    detail: dict[str, Any]
    postprocessed: bool
    created_at: str
    updated_at: str
    #: A fleet's workstation that holds it (a live claim) or else delivered it; None in a
    #: single workstation's SQLite journal, and for a fleet row nobody holds or delivered.
    node: str | None = None

    def submission(self) -> Submission:
        files = [_file_from_json(f) for f in self.files]
        roles = [raw["role"] for raw in self.files]
        media = tuple(f for f, role in zip(files, roles, strict=True) if role != "manifest")
        manifest = next(f for f, role in zip(files, roles, strict=True) if role == "manifest")
        return Submission(
            self.id,
            self.watch,
            manifest,
            media,
            ManifestFormat(self.format or ManifestFormat.OOYALA_MRSS),
        )


def _file_to_json(f: SubmissionFile, role: str) -> dict[str, Any]:
    i = f.identity
    return {
        "relpath": str(f.relpath),
        "dest": str(f.dest),
        "role": role,
        "size": i.size,
        "mtime_ns": i.mtime_ns,
        "ctime_ns": i.ctime_ns,
        "inode": i.inode,
        "device": i.device,
    }


def _file_from_json(raw: dict[str, Any]) -> SubmissionFile:
    return SubmissionFile(
        PurePosixPath(raw["relpath"]),
        PurePosixPath(raw["dest"]),
        FileIdentity(
            raw["size"], raw["mtime_ns"], raw["ctime_ns"], raw["inode"], raw.get("device", 0)
        ),
    )


def files_json(sub: Submission) -> list[dict[str, Any]]:
    media = [_file_to_json(f, "media") for f in sub.media]
    return [*media, _file_to_json(sub.manifest, "manifest")]


UPDATABLE = frozenset({"attempts", "error_code", "error_message", "bytes_done", "detail"})

ALLOWED_FROM: dict[State, frozenset[State]] = {
    State.PENDING: frozenset(),
    State.READY: frozenset(
        {State.PENDING, State.QUEUED, State.SENDING_MEDIA, State.HELD, State.FAILED}
    ),
    State.QUEUED: frozenset({State.READY}),
    State.SENDING_MEDIA: frozenset({State.QUEUED}),
    # back from sending-manifest only in recovery, when no manifest byte ever left; from
    # held when an admin fault before the manifest left is gone (delivery/faults)
    State.MEDIA_SENT: frozenset({State.SENDING_MEDIA, State.SENDING_MANIFEST, State.HELD}),
    State.SENDING_MANIFEST: frozenset({State.MEDIA_SENT, State.QUEUED}),
    State.COMPLETE: frozenset({State.SENDING_MANIFEST}),
    State.FAILED: frozenset(
        {
            State.PENDING,
            State.READY,
            State.QUEUED,
            State.SENDING_MEDIA,
            State.MEDIA_SENT,
            State.SENDING_MANIFEST,
        }
    ),
    State.HELD: frozenset(
        {
            State.QUEUED,  # these four: an admin fault or an unexpected error mid-delivery
            State.SENDING_MEDIA,
            State.MEDIA_SENT,
            State.SENDING_MANIFEST,
            *FINAL - {State.HELD},
            State.PENDING,
            State.READY,
        }
    ),
}


def problems_detail(problems: tuple[Problem, ...]) -> dict[str, Any]:
    detail: dict[str, Any] = {"problems": [problem_json(p) for p in problems[:MAX_PROBLEMS]]}
    if len(problems) > MAX_PROBLEMS:
        detail["problems_left_out"] = len(problems) - MAX_PROBLEMS
    return detail


def problem_json(p: Problem) -> dict[str, Any]:
    return {
        "code": p.code,
        "message": cap(p.message),
        "hint": cap(p.hint),
        "path": p.path,
        "line": p.line,
    }
