"""How the tracker says what it decided about a manifest (Waiting, Ready, Failed, Gone), and
what deciding does to its bookkeeping: a decided manifest stops following its files."""

from __future__ import annotations

from pathlib import PurePosixPath

from hotfolder.assemble import grouping
from hotfolder.assemble.candidates import NEVER, Book, Candidate
from hotfolder.assemble.decisions import Decision, Failed, Gone, GoneWhy, Ready, Waiting
from hotfolder.model import FileIdentity, Problem, Submission, SubmissionFile


def wait(
    cand: Candidate,
    sid: str,
    missing: tuple[PurePosixPath, ...],
    unsettled: tuple[PurePosixPath, ...],
    conflicts: tuple[PurePosixPath, ...] = (),
) -> Waiting:
    cand.waiting_id = sid
    fmt = cand.plan.manifest.format if cand.plan else None
    return Waiting(sid, cand.relpath, missing, unsettled, fmt, conflicts, cand.first_seen)


def ready(book: Book, cand: Candidate, plan: grouping.Plan, ident: FileIdentity, sid: str) -> Ready:
    # On a shared folder another workstation may send it: pin what every client sees alike.
    shared = book.settings.shared
    media = []
    for f in plan.files:
        pinned = book.stability.identity(f.relpath)
        if pinned is None:  # the look just before found every file present and stable
            raise RuntimeError(f"{f.relpath} was stable a moment ago and has no identity")
        media.append(SubmissionFile(f.relpath, f.dest, pinned.portable() if shared else pinned))
        book.claims.claim(f.relpath, cand.relpath)
    pinned_manifest = ident.portable() if shared else ident
    manifest_file = SubmissionFile(cand.relpath, PurePosixPath(cand.relpath.name), pinned_manifest)
    assets = tuple((item.guid, item.title) for item in plan.manifest.items)
    settle(book, cand, ident, sid)
    cand.sent_id = sid
    name = book.settings.name
    sub = Submission(sid, name, manifest_file, tuple(media), plan.manifest.format)
    return Ready(sub, assets, plan.manifest.priority)


def fail(
    book: Book,
    cand: Candidate,
    ident: FileIdentity,
    sid: str,
    problems: tuple[Problem, ...],
    keep: bool = False,
) -> Failed:
    """`keep`: the files stay where they are (another manifest has them)."""
    planned = cand.plan.files if cand.plan and not keep else ()
    # Links and special files were observed as absent: they are never moved.
    present = tuple(f.relpath for f in planned if book.stability.identity(f.relpath))
    fmt = cand.plan.manifest.format if cand.plan else None
    settle(book, cand, ident, sid)
    return Failed(sid, cand.relpath, problems, present, fmt)


def settle(book: Book, cand: Candidate, ident: FileIdentity, sid: str | None = None) -> None:
    """Decided for this identity: look no more until the manifest changes."""
    cand.settled_identity = ident
    cand.decided_id = sid
    cand.waiting_id = None
    cand.next_check = NEVER
    forget_refs(book, cand)


def forget_refs(book: Book, cand: Candidate) -> None:
    for ref in cand.refs:
        if len(book.claims.owners(ref)) <= 1:
            book.stability.forget(ref)
    book.claims.index(cand, frozenset())
    cand.plan_identity = None
    cand.missing, cand.unsettled, cand.touched = set(), set(), set()
    cand.refused = {}


def drop(book: Book, cand: Candidate) -> list[Decision]:
    """The manifest is gone (or is a folder now): close what it stood for."""
    del book.candidates[cand.relpath]
    book.claims.release(cand.relpath)
    forget_refs(book, cand)
    book.stability.forget(cand.relpath)
    if cand.waiting_id is not None:
        return [Gone(cand.waiting_id, cand.relpath)]
    if cand.decided_id is not None:
        return [Gone(cand.decided_id, cand.relpath, GoneWhy.LEFT)]
    return []
