"""Test doubles, shared by the tests and the benchmarks (bench/common.py): an in-memory file
system the tracker can look at and read and the scanner and the poller can list
(intake.listing.Listing), the fake clock, a wait that polls a condition, and an `ascp` that
runs the simulator. Nothing here imports the daemon's wiring, so a benchmark can use it."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hotfolder.beneath import MISSING, Kind, Look
from hotfolder.clock import FakeClock
from hotfolder.intake.listing import Entry, EntryKind
from hotfolder.model import FileIdentity

__all__ = [
    "SIMULATOR",
    "FakeClock",
    "FakeFile",
    "FakeFileSystem",
    "simulator_wrapper",
    "wait_until",
]

SIMULATOR = Path(__file__).resolve().parent / "ascp_sim.py"


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll `condition` until it is truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.01)


def simulator_wrapper(root: Path, env: dict[str, str], stamp_spawns: bool = False) -> Path:
    """root/bin/ascp: runs the simulator with `env` exported (a config's ascp_path points at
    it). With stamp_spawns, each spawn's time is appended to root/spawns.log before the
    simulator's interpreter starts."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    stamp = (
        f"echo $(date +%s.%N) >> {shlex.quote(str(root / 'spawns.log'))}\n" if stamp_spawns else ""
    )
    wrapper = root / "bin" / "ascp"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        f"#!/bin/sh\n{stamp}export {exports}\n"
        f'exec {shlex.quote(sys.executable)} {shlex.quote(str(SIMULATOR))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


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
    unreadable: set[Path] = field(default_factory=set)  # folders that cannot be listed
    listed: list[str] = field(default_factory=list)  # every folder listed, in order
    _folder_ticks: dict[Path, int] = field(default_factory=dict)  # a folder's "mtime"
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
        if old is None:  # a new name in its folder changes the folder, as on disk
            self._folder_ticks[path.parent] = self._tick

    def append(self, path: Path, data: bytes) -> None:
        self.write(path, self.files[path].data + data)

    def remove(self, path: Path) -> None:
        del self.files[path]
        self._tick += 1
        self._folder_ticks[path.parent] = self._tick

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

    # -- intake.listing.Listing -------------------------------------------------------------

    def _folders(self) -> set[Path]:
        return {parent for path in [*self.files, *self.specials] for parent in path.parents}

    def entries(self, folder: str) -> list[Entry]:
        base = Path(folder)
        if base in self.unreadable:
            raise PermissionError(13, "Permission denied", folder)
        if base not in self._folders():
            raise FileNotFoundError(2, "No such file or directory", folder)
        self.listed.append(folder)
        found = {p.name: EntryKind.FILE for p in self.files if p.parent == base}
        found |= {p.name: EntryKind.OTHER for p in self.specials if p.parent == base}
        found |= {p.name: EntryKind.FOLDER for p in self._folders() if p.parent == base}
        return [Entry(name, str(base / name), kind) for name, kind in sorted(found.items())]

    def mtime_ns(self, folder: str) -> int:
        base = Path(folder)
        if base not in self._folders():
            raise FileNotFoundError(2, "No such file or directory", folder)
        return self._folder_ticks.get(base, 0)
