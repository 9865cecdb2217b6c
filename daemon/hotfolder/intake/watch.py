"""Where file-system news comes from: a watchdog observer, and full scans.

Both only report paths (relative to the watch folder) into one queue; deciding what the news
means is the tracker's job. Events can be lost (overflow, a network share, the daemon being
down), so scans at start-up and at intervals are the ground truth and events only speed it up.

Two things watchdog swallows are reported into the same queue as alarms: the kernel refusing a
watch on a new subfolder (the inotify limit: events there would be lost, so poll instead), and
the folder's own watch ending (deleted, moved away, unmounted: look at the folder now).
`FolderGuard` tells a folder that is there from one that only looks there (a bare mount point).
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
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
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import (
    CallbackId,
    InotifyEvent,
    InotifyFD,
    Mask,
    WatchCallback,
    WatchDescriptor,
)

from hotfolder.intake.listing import TOP, DirPoller, list_folder, scan
from hotfolder.intake.mounts import (
    NETWORK_FS,
    Mount,
    choose_mode,
    fs_type,
    mount_of,
    read_mountinfo,
)

# Callers import these from here, where they were before listing.py and mounts.py.
__all__ = [
    "NETWORK_FS",
    "TOP",
    "Alarm",
    "Change",
    "DirPoller",
    "FolderGuard",
    "FolderId",
    "Mount",
    "Presence",
    "Watcher",
    "choose_mode",
    "fs_type",
    "identify",
    "judge",
    "limit_hint",
    "list_folder",
    "mount_of",
    "read_mountinfo",
    "scan",
]


class Alarm(StrEnum):
    """News about the watching itself rather than about a file."""

    REFUSED = "refused"  # the kernel refused a watch below the folder: poll this watch instead
    ROOT_LOST = "root-lost"  # the folder's own watch ended (deleted, moved, unmounted): probe it


@dataclass(frozen=True, slots=True)
class Change:
    watch: str
    relpath: PurePosixPath
    is_dir: bool  # a folder appeared or moved in: its contents need a scan
    kind: str = ""  # watchdog's event type: "modified", "closed" (after a write), ...
    alarm: Alarm | None = None  # set on news about the watching, with relpath the top
    error: OSError | None = None  # why the kernel refused (Alarm.REFUSED)


def limit_hint(err: OSError) -> str | None:
    """What an admin can do when inotify refuses (None when raising a limit would not help)."""
    if err.errno in (errno.ENOSPC, errno.EMFILE):
        return (
            "raise the limit: sysctl -w "
            "fs.inotify.max_user_watches=1048576 fs.inotify.max_user_instances=1024"
        )
    return None


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
        gone: Callable[[], None],
    ) -> None:
        self.watch = watch
        self.root = root
        self.sink = sink
        self.skip = skip  # our own archive/failed folders inside the watch folder
        self.gone = gone  # the folder itself was deleted

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
            if not rel.parts and event.event_type == "deleted":
                self.gone()  # watchdog stops this watch now: say so
            if rel.parts and not any(rel == s or s in rel.parents for s in self.skip):
                kind = event.event_type if raw == event.src_path else "created"
                self.sink.put(Change(self.watch, rel, event.is_directory, kind))


#: Errors that mean the kernel is out of inotify resources, not that a folder went away
#: (ENOENT, ENOTDIR: removed while being watched; those watchdog rightly passes over).
OUT_OF_WATCHES = frozenset({errno.ENOSPC, errno.ENOMEM})


class _TellingInotifyFD(InotifyFD):
    """watchdog's inotify reader, telling what it swallows. watchdog 7 adds a watch for each
    new subfolder on its own thread and drops an OSError there silently (InotifyWatchGroup.
    _add_callback re-raises only for the root), and ends a root's watch (IN_IGNORED after a
    delete or an unmount) without a word. Both go through this class, so we hear of them."""

    def __init__(
        self, refused: Callable[[bytes, OSError], None], lost: Callable[[bytes], None]
    ) -> None:
        super().__init__()
        self._refused = refused
        self._lost = lost
        self._roots: dict[WatchDescriptor, bytes] = {}  # the watch of each watched folder itself

    def add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        root = getattr(callback, "path", None)  # the watch group's own folder
        try:
            wd = super().add_callback(path, mask, callback, id_)
        except OSError as err:
            if err.errno in OUT_OF_WATCHES and isinstance(root, bytes):
                self._refused(root, err)
            raise
        if path == root:
            self._roots[wd] = path
        return wd

    def remove_callbacks(self, callbacks: list[tuple[WatchDescriptor, CallbackId]]) -> None:
        for wd, _ in callbacks:
            self._roots.pop(wd, None)  # removed on purpose: not a loss
        super().remove_callbacks(callbacks)

    def handle_event(self, event: InotifyEvent) -> None:
        super().handle_event(event)
        if event.is_ignored:
            root = self._roots.pop(event.wd, None)
            if root is not None:
                self._lost(root)


class _Observer(BaseObserver):
    """watchdog's InotifyObserver, with our telling reader in place of its own."""

    def __init__(self, fd: InotifyFD) -> None:
        super().__init__(InotifyEmitter, inotify_fd=fd)
        self._fd = fd
        fd.start()

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._fd.stop()
        self._fd.join()


@dataclass(slots=True)
class _Route:
    """Where alarms about one watched folder go."""

    watch: str
    sink: queue.SimpleQueue[Change]
    key: bytes  # the watched folder, as watchdog names it
    adding: bool = True  # refusals while the tree is first registered are raised by add()
    refused: OSError | None = None  # the first refusal: one alarm per watch is enough
    lost: bool = False  # the folder's own watch ended: told once


class Watcher:
    """One observer thread for all watches (watchdog multiplexes inotify itself)."""

    def __init__(self) -> None:
        self.observer: BaseObserver = _Observer(_TellingInotifyFD(self._refused, self._lost))
        self._watches: dict[str, tuple[ObservedWatch, bytes]] = {}
        self._routes: dict[bytes, _Route] = {}  # the watched folder -> its watch
        self._lock = threading.Lock()  # _routes: read on watchdog's thread

    def add(
        self, watch: str, root: Path, sink: queue.SimpleQueue[Change], skip: tuple[Path, ...] = ()
    ) -> None:
        """Start watching, with this watch's changes going to `sink`; raises OSError
        (ENOSPC: the inotify watch limit) if the kernel refuses the folder or any folder
        below it, so the caller can poll. A refusal later, for a new subfolder, comes into
        `sink` as an `Alarm.REFUSED` change."""
        self.remove(watch)
        inside = tuple(
            PurePosixPath(p.relative_to(root).as_posix()) for p in skip if root in p.parents
        )
        key = os.fsencode(str(root))
        route = _Route(watch, sink, key)
        handler = _Handler(watch, root, sink, inside, partial(self._gone, route))
        with self._lock:
            self._routes[key] = route
        try:
            scheduled = self.observer.schedule(
                handler, str(root), recursive=True, event_filter=list(WANTED_EVENTS)
            )
        except OSError:
            with self._lock:
                self._routes.pop(key, None)
            raise
        self._watches[watch] = (scheduled, key)
        with self._lock:
            route.adding = False
            refused = route.refused
        if refused is not None:  # watchdog went on without some subfolders: not good enough
            self.remove(watch)
            raise refused

    def remove(self, watch: str) -> None:
        old = self._watches.pop(watch, None)
        if old is not None:
            scheduled, key = old
            with self._lock:
                self._routes.pop(key, None)
            with contextlib.suppress(KeyError, OSError):
                self.observer.unschedule(scheduled)

    def _refused(self, root: bytes, err: OSError) -> None:
        """On watchdog's thread (or add()'s): the kernel refused a watch below `root`."""
        with self._lock:
            route = self._routes.get(root)
            if route is None or route.refused is not None:
                return
            route.refused = err
            if route.adding:
                return
        route.sink.put(Change(route.watch, TOP, True, alarm=Alarm.REFUSED, error=err))

    def _lost(self, root: bytes) -> None:
        """On the inotify reader's thread: the watch on `root` itself ended (IN_IGNORED)
        without our asking."""
        with self._lock:
            route = self._routes.get(root)
        if route is not None:
            self._gone(route)

    def _gone(self, route: _Route) -> None:
        """The folder's own watch ended: heard from the reader (IN_IGNORED) or the emitter
        (the folder's own delete event), whichever comes first; once per watch added."""
        with self._lock:
            if self._routes.get(route.key) is not route or route.lost:
                return  # an old watch's news, or told already
            route.lost = True
        route.sink.put(Change(route.watch, TOP, True, alarm=Alarm.ROOT_LOST))

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=10)


# -- is the folder there? A bare mount point is not the share --------------------------------


class Presence(StrEnum):
    """What a look at the watch folder found."""

    PRESENT = "present"  # the folder we have been watching
    REPLACED = "replaced"  # a folder, not the one we watched: recreated, swapped or remounted
    MISSING = "missing"  # no readable folder there
    UNMOUNTED = "unmounted"  # the mount point is there, the file system that held it is gone

    @property
    def usable(self) -> bool:
        return self in (Presence.PRESENT, Presence.REPLACED)


@dataclass(frozen=True, slots=True)
class FolderId:
    """Which folder a path leads to: its device and inode, and the mount it is on (point ""
    when the mount table could not be read)."""

    dev: int
    ino: int
    mount_id: int
    mount_point: str


def judge(seen: FolderId | None, found: FolderId | None, lost: bool = False) -> Presence:
    """Compare the folder found at the watch path now with the one seen when watching began
    (`lost`: that folder is known to be gone, even if a new one got its inode number).

    A share unmounted leaves its mount point: a real, empty (or stale) folder on the file
    system below, which is not the drop folder and must not be taken as one emptied. It shows
    as the path now being held by a mount above the one that held it."""
    if found is None:
        return Presence.MISSING
    if seen is None:
        return Presence.REPLACED
    if found == seen and not lost:
        return Presence.PRESENT
    if seen.mount_point and found.mount_point and found.mount_point != seen.mount_point:
        above = found.mount_point.rstrip("/") + "/"
        if seen.mount_point.startswith(above):
            return Presence.UNMOUNTED
    return Presence.REPLACED


def identify(root: Path, mountinfo: Callable[[], str] = read_mountinfo) -> FolderId | None:
    """The FolderId at `root`, or None if no folder this process can list is there."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or not os.access(root, os.R_OK | os.X_OK):
        return None
    mount = mount_of(root, mountinfo())
    if mount is None:
        return FolderId(st.st_dev, st.st_ino, 0, "")
    return FolderId(st.st_dev, st.st_ino, mount.mount_id, mount.point)


class FolderGuard:
    """Remembers the folder a watch began on, and says whether the path still leads there.
    One stat and one read of the mount table per look (the caller looks once a second)."""

    def __init__(self, mountinfo: Callable[[], str] = read_mountinfo) -> None:
        self._mountinfo = mountinfo
        self._root: Path | None = None
        self._seen: FolderId | None = None
        self._lost = False

    def remember(self, root: Path) -> None:
        """Watching (re)starts on `root`: this is the folder to expect from now on."""
        self._root = root
        self._seen = identify(root, self._mountinfo)
        self._lost = False

    def lost(self) -> None:
        """The folder's own watch ended (deleted or unmounted): a folder at the path from now
        on is another one, even with the same inode number (ext4 and tmpfs reuse them)."""
        self._lost = True

    def check(self) -> Presence:
        if self._root is None:
            return Presence.MISSING
        return judge(self._seen, identify(self._root, self._mountinfo), self._lost)
