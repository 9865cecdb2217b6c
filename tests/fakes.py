"""Test doubles for the seams: an in-memory file system the tracker can look at and read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hotfolder.beneath import MISSING, Kind, Look
from hotfolder.model import FileIdentity


@dataclass
class FakeFile:
    data: bytes
    mtime_ns: int
    ctime_ns: int
    inode: int


@dataclass
class FakeFileSystem:
    """Files keyed by absolute path. Every write bumps mtime/ctime like a real copier would.
    `links` are symlinks (a link anywhere in a path makes the path a link); `specials` are
    FIFOs and devices, by path."""

    files: dict[Path, FakeFile] = field(default_factory=dict)
    links: set[Path] = field(default_factory=set)
    specials: set[Path] = field(default_factory=set)
    reads: list[Path] = field(default_factory=list)  # every file opened for reading, in order
    _tick: int = 1
    _inode: int = 100

    def write(self, path: Path, data: bytes, *, new_inode: bool = False) -> None:
        self._tick += 1
        old = self.files.get(path)
        if old is None or new_inode:
            self._inode += 1
            inode = self._inode
        else:
            inode = old.inode
        self.files[path] = FakeFile(data, self._tick, self._tick, inode)

    def append(self, path: Path, data: bytes) -> None:
        self.write(path, self.files[path].data + data)

    def remove(self, path: Path) -> None:
        del self.files[path]

    def identity(self, path: Path) -> FileIdentity | None:
        f = self.files.get(path)
        return FileIdentity(len(f.data), f.mtime_ns, f.ctime_ns, f.inode) if f else None

    def look(self, root: Path, relpath: PurePosixPath) -> Look:
        path = root / relpath
        for part in (path, *path.parents):
            if part in self.links:
                return Look(Kind.LINK, FileIdentity(0, 0, 0, hash(part)), str(part))
        if path in self.specials:
            return Look(Kind.SPECIAL, FileIdentity(0, 0, 0, hash(path)), "a named pipe (FIFO)")
        ident = self.identity(path)
        return Look(Kind.FILE, ident) if ident else MISSING

    def read(self, root: Path, relpath: PurePosixPath, limit: int) -> bytes:
        self.reads.append(root / relpath)
        return self.files[root / relpath].data[:limit]

    def names(self, root: Path, folder: PurePosixPath) -> list[str]:
        base = root / folder
        return [p.name for p in self.files if p.parent == base]
