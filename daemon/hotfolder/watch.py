"""Where file-system news comes from: a watchdog observer, and full scans.

Both only report paths (relative to the watch folder) into one queue; deciding what the news
means is the tracker's job. Events can be lost (overflow, a network share, the daemon being
down), so scans at start-up and at intervals are the ground truth and events only speed it up.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from hotfolder.ignore import is_ignored


@dataclass(frozen=True, slots=True)
class Change:
    watch: str
    relpath: PurePosixPath
    is_dir: bool  # a folder appeared or moved in: its contents need a scan


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: str, root: Path, sink: queue.SimpleQueue[Change],
                 skip: tuple[PurePosixPath, ...]) -> None:
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
                self.sink.put(Change(self.watch, rel, event.is_directory))


class Watcher:
    """One observer thread for all watches (watchdog multiplexes inotify itself)."""

    def __init__(self, sink: queue.SimpleQueue[Change]) -> None:
        self.sink = sink
        self.observer: BaseObserver = Observer()

    def add(self, watch: str, root: Path, skip: tuple[Path, ...] = ()) -> None:
        inside = tuple(PurePosixPath(p.relative_to(root).as_posix()) for p in skip
                       if root in p.parents)
        handler = _Handler(watch, root, self.sink, inside)
        self.observer.schedule(handler, str(root), recursive=True)

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=10)


TOP = PurePosixPath()


def scan(root: Path, ignore: tuple[str, ...] = (), skip: tuple[Path, ...] = (),
         below: PurePosixPath = TOP) -> Iterator[PurePosixPath]:
    """Every regular file under root/below, relative to root, minus ignored names and folders.

    `skip` holds folders never to enter (the archive and failed folders, when they live inside
    the watch folder). Unreadable folders are passed over, not fatal.
    """
    stack = [root / below]
    skipped = {os.path.normpath(p) for p in skip}
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if is_ignored(entry.name, ignore):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if os.path.normpath(entry.path) not in skipped:
                        stack.append(Path(entry.path))
                elif entry.is_file():
                    yield PurePosixPath(Path(entry.path).relative_to(root).as_posix())
            except OSError:
                continue
