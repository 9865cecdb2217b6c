"""How to watch a folder: inotify where events arrive, polling where they do not (network
file systems, told from /proc/self/mountinfo)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: File systems whose changes made elsewhere never reach local inotify (ingest-facts §6).
NETWORK_FS = frozenset(
    {
        "cifs",
        "smb3",
        "smbfs",
        "nfs",
        "nfs4",
        "9p",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "sshfs",
        "afs",
        "davfs",
        "fuse.davfs2",
        "fuse.rclone",
        "lustre",
        "gpfs",
        "beegfs",
        "ocfs2",
        "gfs2",
        "fuse.s3fs",
        "fuse.mergerfs",
    }
)


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mountinfo, as far as we need it."""

    mount_id: int
    point: str
    fstype: str


_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040, ...)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path: Path | str, mountinfo: str) -> Mount | None:
    """The mount holding `path` (the longest mount point above it; the last one mounted
    there when several are stacked), from /proc/self/mountinfo text."""
    best: Mount | None = None
    target = os.path.realpath(path)
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5 or not fields[0].isdigit():
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            fstype = line.split(" - ", 1)[1].split()[0]
            best = Mount(int(fields[0]), point, fstype)
    return best


def fs_type(path: Path, mountinfo: str) -> str:
    """The file-system type of the mount holding `path`, from /proc/self/mountinfo text."""
    mount = mount_of(path, mountinfo)
    return mount.fstype if mount is not None else "unknown"


def read_mountinfo() -> str:
    """This process's mount table ("" if it cannot be read: then mounts are not told apart)."""
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""


def choose_mode(mode: str, path: Path, mountinfo: str | None = None) -> str:
    """'inotify' or 'poll' for a watch configured as auto, inotify or poll."""
    if mode != "auto":
        return mode
    if mountinfo is None:
        mountinfo = read_mountinfo()
        if not mountinfo:
            return "poll"  # cannot tell: polling is slower but never misses a change
    return "poll" if fs_type(path, mountinfo) in NETWORK_FS else "inotify"
