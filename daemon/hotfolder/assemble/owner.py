"""Who dropped a manifest: the user name of the manifest file's owner, for the window's
"dropped by" filter and the editor's failure mail.

Read through `beneath.look` (one lstat, no link followed below the drop folder), so a link an
editor planted names its own owner, never its target's. When the caller pinned the manifest
(a ready submission), the owner counts only if that lstat sees the same file: a manifest
swapped since it was checked is not attributed to whoever swapped it in.
"""

from __future__ import annotations

import pwd
from pathlib import Path, PurePosixPath

from hotfolder import beneath
from hotfolder.model import FileIdentity


def owner_of(root: Path, relpath: PurePosixPath, pinned: FileIdentity | None = None) -> str | None:
    """The owner's user name (the uid as a number when no account has it); None when the
    manifest is gone, behind a link, or no longer the pinned file."""
    try:
        found = beneath.look(root, relpath)
    except OSError:  # an unreadable folder on the way: nobody to name
        return None
    if found.uid is None or found.identity is None:
        return None
    if pinned is not None and not pinned.same_as(found.identity):
        return None
    return user_name(found.uid)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid from another machine's NFS export, say
        return str(uid)
