"""Listing the drop folder: full scans (the ground truth events only speed up) and DirPoller
(where events never come). Both read the folder through the Listing seam (scandir and a
folder's mtime), so tests can hand them a fake file system."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Protocol

from hotfolder.ignore import is_ignored

TOP = PurePosixPath()


class EntryKind(StrEnum):
    FOLDER = "folder"  # a real folder (a link to one is not entered)
    FILE = "file"  # a regular file, or a link to one (the tracker refuses links later)
    OTHER = "other"  # a FIFO, a device, a dangling link: never content


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    path: str  # the folder's path joined with the name, as os.scandir gives it
    kind: EntryKind


class Listing(Protocol):
    """The file system as the scanner and the poller see it. Both raise OSError for a
    folder that cannot be read (it is passed over)."""

    def entries(self, folder: str) -> list[Entry]: ...

    def mtime_ns(self, folder: str) -> int: ...


class LocalListing:
    def entries(self, folder: str) -> list[Entry]:
        found = []
        for entry in list(os.scandir(folder)):
            try:
                if entry.is_dir(follow_symlinks=False):
                    kind = EntryKind.FOLDER
                elif entry.is_file():
                    kind = EntryKind.FILE
                else:
                    kind = EntryKind.OTHER
            except OSError:
                continue  # gone, or unreadable, between the listing and the look
            found.append(Entry(entry.name, entry.path, kind))
        return found

    def mtime_ns(self, folder: str) -> int:
        return os.stat(folder).st_mtime_ns


LOCAL = LocalListing()


def list_folder(
    folder: str, ignore: tuple[str, ...], skipped: set[str], listing: Listing = LOCAL
) -> tuple[list[str], list[str]]:
    """(files, subfolders) of one folder, as paths: ignored names left out, our own folders
    (`skipped`, normalised) not entered, unreadable entries and folders passed over."""
    files: list[str] = []
    subfolders: list[str] = []
    try:
        entries = listing.entries(folder)
    except OSError:
        return files, subfolders
    for entry in entries:
        if is_ignored(entry.name, ignore):
            continue
        if entry.kind is EntryKind.FOLDER:
            if os.path.normpath(entry.path) not in skipped:
                subfolders.append(entry.path)
        elif entry.kind is EntryKind.FILE:
            files.append(entry.path)
    return files, subfolders


def scan(
    root: Path,
    ignore: tuple[str, ...] = (),
    skip: tuple[Path, ...] = (),
    below: PurePosixPath = TOP,
    listing: Listing = LOCAL,
) -> Iterator[PurePosixPath]:
    """Every regular file under root/below, relative to root, minus ignored names and folders.

    `skip` holds folders never to enter (the archive and failed folders, when they live inside
    the watch folder). Unreadable folders are passed over, not fatal.
    """
    skipped = {os.path.normpath(p) for p in skip}
    prefix = len(str(root).rstrip("/")) + 1
    stack = [str(root / below)]
    while stack:
        files, subfolders = list_folder(stack.pop(), ignore, skipped, listing)
        for path in files:
            yield PurePosixPath(path[prefix:])
        stack.extend(subfolders)


class DirPoller:
    """Polling without stat-ing every file: a folder's mtime changes when an entry is added,
    removed or renamed in it, so only changed folders are listed again. Files that change in
    place are the tracker's business (it re-stats what it waits for)."""

    def __init__(
        self,
        root: Path,
        ignore: tuple[str, ...] = (),
        skip: tuple[Path, ...] = (),
        listing: Listing = LOCAL,
    ) -> None:
        self.root = root
        self.listing = listing
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
                mtime = self.listing.mtime_ns(folder)
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
        files, subfolders = list_folder(folder, self.ignore, self.skip, self.listing)
        prefix = len(str(self.root).rstrip("/")) + 1
        found.extend(PurePosixPath(path[prefix:]) for path in files)
        return subfolders
