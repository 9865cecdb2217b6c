"""Who may work with failed/ and archive/: the editors' group, by the admin's choice.

The state folder is the daemon's alone (see journal); what it hands back to people (a failed
submission with its REPORT.txt, an archived one) gets the folder and file modes, and the group,
set per watch under `permissions:`, whatever the process umask (systemd's UMask=0027 would
otherwise leave editors unable to fix or remove their own failed drops). Without
`permissions:` the umask decides, as before.

Applying them is best-effort: the files are already safe where they are, so a refused chmod
or chown is logged with what to do, never an error for the submission.
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class SharedPermissions:
    folder_mode: int  # e.g. 0o2770: group may create and delete, new entries keep the group
    file_mode: int  # e.g. 0o660
    group: str | None = None  # None: leave the group as created


def parse_mode(text: str) -> int:
    """'2770', '0660' or '0o2770' (the schema checks the form) to an int."""
    return int(text.removeprefix("0o"), 8)


def make_shared_dir(path: Path, settings: SharedPermissions | None) -> None:
    """Create `path` (and its parents) if needed, then give it the shared folder mode."""
    path.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        _apply(path, settings.folder_mode, settings)


def shared_file(path: Path, settings: SharedPermissions | None) -> None:
    """Give a file we wrote or moved the shared file mode and group. A symlink is left alone
    (chmod would follow it out of the folder)."""
    if settings is not None and not path.is_symlink():
        _apply(path, settings.file_mode, settings)


def share_tree(base: Path, top: Path, settings: SharedPermissions | None) -> None:
    """After a quarantine or an archive: `base` (failed_dir or archive_dir), each folder from
    it down to `top` (failed_dir/<id>, archive_dir/<date>/<id>), and everything inside `top`.
    Symlinks are never followed."""
    if settings is None:
        return
    folders = [top, *(p for p in top.parents if p == base or base in p.parents)]
    for folder in reversed(folders):
        make_shared_dir(folder, settings)
    for root, dirs, files in os.walk(top):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                _apply(Path(root, name), settings.folder_mode, settings)
        for name in files:
            shared_file(Path(root, name), settings)


def _apply(path: Path, mode: int, settings: SharedPermissions) -> None:
    try:
        if settings.group is not None:
            gid = grp.getgrnam(settings.group).gr_gid
            if path.lstat().st_gid != gid:
                os.chown(path, -1, gid, follow_symlinks=False)
        if stat.S_IMODE(path.lstat().st_mode) != mode:
            os.chmod(path, mode)
    except (OSError, KeyError) as err:
        log.warning(
            "cannot share this file with the editors' group",
            path=str(path),
            error=str(err),
            hint=f"add the daemon's user to group {settings.group}"
            if settings.group
            else "check who owns it",
        )
