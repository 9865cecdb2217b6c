"""Where file-system news comes from: a watchdog observer, and full scans.

Both only report paths (relative to the watch folder) into one queue; deciding what the news
means is the tracker's job. Events can be lost (overflow, a network share, the daemon being
down), so scans at start-up and at intervals are the ground truth and events only speed it up.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from hotfolder.ignore import is_ignored


@dataclass(frozen=True, slots=True)
class Change:
    watch: str
    relpath: PurePosixPath
    is_dir: bool  # a folder appeared or moved in: its contents need a scan
    kind: str = ""  # watchdog's event type: "modified", "closed" (after a write), ...


#: The changes that matter. Leaving out opens, reads and directory-modified events keeps them
#: out of the inotify mask altogether: every scan opens every folder, and on a big tree those
#: events alone kept watchdog's reader thread busy.
WANTED_EVENTS = (
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileClosedEvent,
    FileAttribEvent,
)


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        watch: str,
        root: Path,
        sink: queue.SimpleQueue[Change],
        skip: tuple[PurePosixPath, ...],
    ) -> None:
        self.watch = watch
        self.root = root
        self.sink = sink
        self.skip = skip  # our own archive/failed folders inside the watch folder

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads, including our own, change nothing
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw)
            if not path:
                continue
            try:
                rel = PurePosixPath(Path(path).relative_to(self.root).as_posix())
            except ValueError:
                continue
            if rel.parts and not any(rel == s or s in rel.parents for s in self.skip):
                kind = event.event_type if raw == event.src_path else "created"
                self.sink.put(Change(self.watch, rel, event.is_directory, kind))


class Watcher:
    """One observer thread for all watches (watchdog multiplexes inotify itself)."""

    def __init__(self) -> None:
        self.observer: BaseObserver = Observer()
        self._watches: dict[str, ObservedWatch] = {}

    def add(
        self, watch: str, root: Path, sink: queue.SimpleQueue[Change], skip: tuple[Path, ...] = ()
    ) -> None:
        """Start watching, with this watch's changes going to `sink`; raises OSError
        (ENOSPC: the inotify watch limit) if the kernel refuses, so the caller can poll."""
        self.remove(watch)
        inside = tuple(
            PurePosixPath(p.relative_to(root).as_posix()) for p in skip if root in p.parents
        )
        handler = _Handler(watch, root, sink, inside)
        self._watches[watch] = self.observer.schedule(
            handler, str(root), recursive=True, event_filter=list(WANTED_EVENTS)
        )

    def remove(self, watch: str) -> None:
        old = self._watches.pop(watch, None)
        if old is not None:
            with contextlib.suppress(KeyError, OSError):
                self.observer.unschedule(old)

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=10)


TOP = PurePosixPath()


def list_folder(
    folder: str, ignore: tuple[str, ...], skipped: set[str]
) -> tuple[list[str], list[str]]:
    """(files, subfolders) of one folder, as paths: ignored names left out, our own folders
    (`skipped`, normalised) not entered, unreadable entries and folders passed over."""
    files: list[str] = []
    subfolders: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return files, subfolders
    for entry in entries:
        if is_ignored(entry.name, ignore):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if os.path.normpath(entry.path) not in skipped:
                    subfolders.append(entry.path)
            elif entry.is_file():
                files.append(entry.path)
        except OSError:
            continue
    return files, subfolders


def scan(
    root: Path,
    ignore: tuple[str, ...] = (),
    skip: tuple[Path, ...] = (),
    below: PurePosixPath = TOP,
) -> Iterator[PurePosixPath]:
    """Every regular file under root/below, relative to root, minus ignored names and folders.

    `skip` holds folders never to enter (the archive and failed folders, when they live inside
    the watch folder). Unreadable folders are passed over, not fatal.
    """
    skipped = {os.path.normpath(p) for p in skip}
    prefix = len(str(root).rstrip("/")) + 1
    stack = [str(root / below)]
    while stack:
        files, subfolders = list_folder(stack.pop(), ignore, skipped)
        for path in files:
            yield PurePosixPath(path[prefix:])
        stack.extend(subfolders)


# -- how to watch: inotify where events arrive, polling where they do not ---------------------

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


def fs_type(path: Path, mountinfo: str) -> str:
    """The file-system type of the mount holding `path`, from /proc/self/mountinfo text."""
    best, kind = "", "unknown"
    target = os.path.realpath(path)
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        fstype = line.split(" - ", 1)[1].split()[0]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fstype
    return kind


def choose_mode(mode: str, path: Path, mountinfo: str | None = None) -> str:
    """'inotify' or 'poll' for a watch configured as auto, inotify or poll."""
    if mode != "auto":
        return mode
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return "poll"  # cannot tell: polling is slower but never misses a change
    return "poll" if fs_type(path, mountinfo) in NETWORK_FS else "inotify"


class DirPoller:
    """Polling without stat-ing every file: a folder's mtime changes when an entry is added,
    removed or renamed in it, so only changed folders are listed again. Files that change in
    place are the tracker's business (it re-stats what it waits for)."""

    def __init__(
        self, root: Path, ignore: tuple[str, ...] = (), skip: tuple[Path, ...] = ()
    ) -> None:
        self.root = root
        self.ignore = ignore
        self.skip = {os.path.normpath(p) for p in skip}
        self._known: dict[str, tuple[int, list[str]]] = {}  # folder -> (mtime, subfolders)

    def poll(self) -> list[PurePosixPath]:
        """Files in folders that are new or changed since the last poll. An unchanged folder
        costs one stat: its subfolders are remembered, not listed again."""
        found: list[PurePosixPath] = []
        known: dict[str, tuple[int, list[str]]] = {}
        stack = [str(self.root)]
        while stack:
            folder = stack.pop()
            try:
                mtime = os.stat(folder).st_mtime_ns
            except OSError:
                continue
            cached = self._known.get(folder)
            if cached is not None and cached[0] == mtime:
                subfolders = cached[1]
            else:
                subfolders = self._list(folder, found)
            known[folder] = (mtime, subfolders)
            stack.extend(subfolders)
        self._known = known
        return found

    def _list(self, folder: str, found: list[PurePosixPath]) -> list[str]:
        files, subfolders = list_folder(folder, self.ignore, self.skip)
        prefix = len(str(self.root).rstrip("/")) + 1
        found.extend(PurePosixPath(path[prefix:]) for path in files)
        return subfolders
