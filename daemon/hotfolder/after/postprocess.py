"""After a submission ends: archive or delete what was sent, quarantine what failed.

Nothing here deletes or moves a file whose identity differs from the one that was sent: an
editor who re-saved a file after it left keeps the new version where it is.
Moves are idempotent, so a crash halfway through an archive is finished on the next start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from hotfolder import beneath, perms, report
from hotfolder.model import Problem, Submission, SubmissionFile
from hotfolder.perms import SharedPermissions

REPORT_TXT = report.REPORT_TXT
REPORT_JSON = report.REPORT_JSON
RECEIPT_JSON = "receipt.json"


@dataclass(frozen=True, slots=True)
class Outcome:
    moved: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # changed since sending, or already gone
    destination: Path | None = None


def archive_folder(archive_dir: Path, when: datetime, sid: str) -> Path:
    return archive_dir / when.strftime("%Y-%m-%d") / sid


def after_success(
    sub: Submission,
    root: Path,
    action: str,
    archive_dir: Path,
    when: datetime,
    permissions: SharedPermissions | None = None,
) -> Outcome:
    if action == "keep":
        return Outcome(kept=tuple(str(f.relpath) for f in sub.files))
    if action == "delete":
        return _delete(sub, root)
    folder = archive_folder(archive_dir, when, sub.id)
    outcome = _move_all(sub.files, root, folder)
    _write_json(
        folder / RECEIPT_JSON,
        {
            "submission": sub.id,
            "watch": sub.watch,
            "format": str(sub.format),
            "delivered_at": when.isoformat(),
            "files": [{"name": str(f.dest), "bytes": f.identity.size} for f in sub.files],
            "kept_in_drop_folder": list(outcome.kept),
        },
    )
    perms.share_tree(archive_dir, folder, permissions)  # the watch's `permissions:`, if any
    return outcome


def _delete(sub: Submission, root: Path) -> Outcome:
    deleted, kept = [], []
    for f in sub.files:
        try:
            beneath.unlink(root, f.relpath, f.identity)
        except FileNotFoundError:
            kept.append(str(f.relpath))  # already gone: nothing of ours to delete
        except (beneath.Changed, beneath.LinkInPath):
            kept.append(str(f.relpath))  # not the file that was sent: the editor's, left alone
        else:
            deleted.append(str(f.relpath))
    return Outcome(deleted=tuple(deleted), kept=tuple(kept))


def _move_all(files: Iterable[SubmissionFile], root: Path, folder: Path) -> Outcome:
    moved, kept = [], []
    for f in files:
        dest = folder / f.dest
        try:
            beneath.rename_out(root, f.relpath, f.identity, dest)
        except (FileNotFoundError, beneath.Changed, beneath.LinkInPath):
            if not dest.exists():  # moved before a crash, or changed since sent: left there
                kept.append(str(f.relpath))
        else:
            moved.append(str(f.relpath))
    return Outcome(moved=tuple(moved), kept=tuple(kept), destination=folder)


# -- quarantine --------------------------------------------------------------------------------


def quarantine(
    sid: str,
    watch: str,
    root: Path,
    manifest: PurePosixPath,
    present: Iterable[PurePosixPath],
    problems: Iterable[Problem],
    failed_dir: Path,
    when: datetime,
    permissions: SharedPermissions | None = None,
) -> Path:
    """Move the manifest and its present files to failed_dir/<id>/ with REPORT.txt and
    report.json. Nothing is deleted."""
    folder = failed_dir / sid
    moved, left = [], []
    for relpath in (*present, manifest):
        # Walked from the root without following links: a link swapped into the path can
        # never bring a file from outside the drop folder into failed/, where editors read.
        try:
            beneath.rename_out(root, relpath, None, folder / relpath.relative_to(manifest.parent))
        except (FileNotFoundError, beneath.Changed, beneath.LinkInPath):
            left.append(relpath)
        else:
            moved.append(relpath)
    report.write(
        folder,
        report.Report(
            submission=sid,
            watch=watch,
            drop_folder=root,
            manifest=manifest,
            failed_at=when,
            problems=tuple(problems),
            failed_folder=folder,
            moved=tuple(moved),
            left_in_drop_folder=tuple(left),
        ),
    )
    perms.share_tree(failed_dir, folder, permissions)  # editors may fix or remove it
    return folder


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
