"""Test doubles for the seams: an in-memory filesystem the tracker can stat and read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hotfolder.model import FileIdentity


@dataclass
class FakeFile:
    data: bytes
    mtime_ns: int
    ctime_ns: int
    inode: int


@dataclass
class FakeFileSystem:
    """Files keyed by absolute path. Every write bumps mtime/ctime like a real copier would."""

    files: dict[Path, FakeFile] = field(default_factory=dict)
    links_outside: set[Path] = field(default_factory=set)
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

    def escapes(self, path: Path, root: Path) -> bool:
        return path in self.links_outside

    def read(self, path: Path, limit: int) -> bytes:
        return self.files[path].data[:limit]
