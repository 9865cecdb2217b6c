"""What the tracker tells an editor, one constructor per kind of Problem, so each message and
hint is worded in one place (REPORT.txt, `status` and the window all show these)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from hotfolder.beneath import Kind, Look
from hotfolder.model import Problem


def not_here(relpath: PurePosixPath) -> Problem:
    return Problem(
        "missing-file",
        f"'{relpath}' is not in the drop folder",
        "copy it next to the manifest",
        path=str(relpath),
    )


def never_arrived(missing: Iterable[PurePosixPath]) -> Problem:
    return Problem(
        "incomplete",
        "files named in the manifest never arrived: " + ", ".join(str(p) for p in missing),
        "copy the missing files into the drop folder "
        "next to the manifest, then drop the manifest again",
    )


def conflict(ref: PurePosixPath, other: PurePosixPath, how: str) -> Problem:
    return Problem(
        "conflict",
        f"'{ref}' {how} the manifest '{other}'",
        "a file can go with one manifest only; name another file, or remove the other "
        "manifest first",
        path=str(ref),
    )


def manifest_not_a_file(relpath: PurePosixPath, found: Look) -> Problem:
    # A link is never followed (it could name a password file), a FIFO never opened.
    what = "a link to another file" if found.kind is Kind.LINK else found.where
    return Problem(
        "manifest-not-a-file",
        f"the manifest '{relpath}' is {what}",
        "copy the manifest file itself into the drop folder; links are not followed",
        path=str(relpath),
    )


def manifest_too_large(size: int, limit: int) -> Problem:
    return Problem(
        "manifest-too-large",
        f"the manifest is {size} bytes (limit {limit})",
        "check this is really the manifest; raise max_manifest_bytes if it is",
    )


def unreadable_manifest(err: OSError) -> Problem:
    return Problem(
        "unreadable-manifest",
        f"cannot read the manifest: {err.strerror}",
        "check the file's permissions",
    )


def internal_error(err: Exception) -> Problem:
    return Problem(
        "internal-error",
        f"hotfolder could not evaluate this manifest ({type(err).__name__})",
        "this is a fault in hotfolder, not in your drop; the administrator can see it in "
        "the log; drop the manifest again once it is fixed",
    )


def through_a_link(relpath: PurePosixPath, link: str) -> Problem:
    return Problem(
        "path-escapes",
        f"'{relpath}' goes through a link ('{link}'), which may point outside the drop folder",
        "copy the file itself into the drop folder; links are not followed",
        path=str(relpath),
    )


def not_a_file(relpath: PurePosixPath, found: Look) -> Problem:
    what = "a folder" if found.kind is Kind.FOLDER else found.where
    return Problem(
        "not-a-file",
        f"'{relpath}' is {what}, not a file",
        "put the file itself there under that name",
        path=str(relpath),
    )
