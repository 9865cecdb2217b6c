"""Reading a manifest: parsed at most `max_manifest_bytes` (a larger one is refused unread),
grouped into a plan, its named files followed from then on."""

from __future__ import annotations

from pathlib import PurePosixPath

from hotfolder.assemble import grouping, manifest, problems, verdicts
from hotfolder.assemble.candidates import Book, Candidate
from hotfolder.assemble.decisions import Failed, Gone, GoneWhy, Waiting
from hotfolder.model import FileIdentity, Manifest, Problem

#: How often a manifest re-checks when only time can tell (an open writer, a conflict).
MAX_RECHECK = 2.0


def peek(book: Book, cand: Candidate, ident: FileIdentity, sid: str, now: float) -> Waiting:
    """The manifest is still settling: read it anyway, so that the files it names start
    their own stability window now rather than once the manifest has settled. Nothing is
    decided from an unsettled manifest; a parse error here just means 'look again'."""
    if cand.plan_identity != ident and ident.size <= book.settings.max_manifest_bytes:
        try:
            data = book.fs.read(book.settings.root, cand.relpath, ident.size)
            parsed = manifest.parse(data, cand.relpath.name)
        except (manifest.ManifestError, manifest.NotAManifest, OSError):
            pass
        else:
            adopt(book, cand, ident, parsed)
    missing: tuple[PurePosixPath, ...] = ()
    if cand.plan is not None and cand.plan_identity == ident:
        missing = book.looker.files(cand, cand.plan, now).missing
    book.due.schedule(cand, book.stability.stable_at(cand.relpath) or now + MAX_RECHECK)
    return verdicts.wait(cand, sid, missing, (cand.relpath,))


def plan(book: Book, cand: Candidate, ident: FileIdentity, sid: str) -> Failed | Gone | None:
    """Parse the manifest: a Failed if it is unusable, None once it is planned (or, if it
    is not a manifest at all, settled and left alone)."""
    limit = book.settings.max_manifest_bytes
    if ident.size > limit:
        too_large = problems.manifest_too_large(ident.size, limit)
        return verdicts.fail(book, cand, ident, sid, (too_large,))
    try:
        data = book.fs.read(book.settings.root, cand.relpath, limit + 1)
        parsed = manifest.parse(data, cand.relpath.name)
    except manifest.NotAManifest:
        waiting = cand.waiting_id
        verdicts.settle(book, cand, ident)
        return Gone(waiting, cand.relpath, GoneWhy.NOT_A_MANIFEST) if waiting else None
    except manifest.ManifestError as err:
        problem = Problem(err.code, err.message, err.hint, str(cand.relpath), err.line)
        return verdicts.fail(book, cand, ident, sid, (problem,))
    except OSError as err:
        return verdicts.fail(book, cand, ident, sid, (problems.unreadable_manifest(err),))
    adopt(book, cand, ident, parsed)
    return None


def adopt(book: Book, cand: Candidate, ident: FileIdentity, parsed: Manifest) -> None:
    """Group the parsed manifest, and start following the files it names."""
    cand.plan = grouping.plan(cand.relpath, parsed)
    cand.plan_identity = ident
    cand.full = True
    book.claims.index(cand, frozenset(f.relpath for f in cand.plan.files))
