"""The drop folder as seen from its root, never following a link below it.

Editors control everything under a watch folder, including symlinks in any path component
(`ln -s / drop/x/root`, `ln -s .. drop/y/up`). Every look, read, move and delete below the root
therefore walks the path one component at a time from a descriptor of the root, with
O_NOFOLLOW, and acts on the descriptor it checked: a link anywhere in the path is reported, never
followed, and a file swapped between the check and the act is refused by its device and inode.
The root itself may be a link (an admin's choice in the config); it is opened once per call.

Leaf module: it imports only `model`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from hotfolder.model import FileIdentity

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Kind(StrEnum):
    FILE = "file"  # a regular file: the only thing that can be sent
    MISSING = "missing"  # nothing there (yet)
    LINK = "link"  # a symlink in the path (the file itself or a folder on the way)
    SPECIAL = "special"  # a FIFO, a device, a socket: can never be sent
    FOLDER = "folder"  # a folder where a file was named


@dataclass(frozen=True, slots=True)
class Look:
    kind: Kind
    identity: FileIdentity | None = None  # None: missing, or a link on the way to it
    where: str = ""  # for LINK: the component that is a link; for SPECIAL: what it is
    uid: int | None = None  # the entry's owner, from the same lstat as `identity`

    @property
    def is_file(self) -> bool:
        return self.kind is Kind.FILE


MISSING = Look(Kind.MISSING)


class LinkInPath(OSError):
    """A component below the root is a symlink (or not a folder): refused, not followed."""

    def __init__(self, component: str) -> None:
        super().__init__(errno.ELOOP, f"'{component}' is a link (not followed)")
        self.component = component


class Changed(OSError):
    """The file is not the one that was checked (another device/inode, size or mtime)."""


@contextmanager
def open_folder(root: Path, folder: PurePosixPath) -> Iterator[int]:
    """A descriptor of root/folder, walked component by component without following links.
    Raises FileNotFoundError, or LinkInPath naming the component that is a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walked = PurePosixPath()
        for part in folder.parts:
            walked /= part
            if part in ("", ".", ".."):
                raise LinkInPath(str(walked))
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LinkInPath(str(walked)) from err
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def look(root: Path, relpath: PurePosixPath) -> Look:
    """What is at root/relpath, without following any link below root."""
    try:
        with open_folder(root, relpath.parent) as fd:
            st = os.stat(relpath.name, dir_fd=fd, follow_symlinks=False)
    except LinkInPath as err:
        return Look(Kind.LINK, where=err.component)
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    return _kind(st, str(relpath))


def _kind(st: os.stat_result, where: str) -> Look:
    """The entry's kind; its identity (of the entry itself, a link's own for a link) lets a
    caller tell a refused entry apart from a new one at the same place."""
    ident, uid = FileIdentity.of(st), st.st_uid
    if stat.S_ISREG(st.st_mode):
        return Look(Kind.FILE, ident, uid=uid)
    if stat.S_ISLNK(st.st_mode):
        return Look(Kind.LINK, ident, where, uid)
    if stat.S_ISDIR(st.st_mode):
        return Look(Kind.FOLDER, ident, where, uid)
    what = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(st.st_mode)
        else "a socket"
        if stat.S_ISSOCK(st.st_mode)
        else "a device file"
    )
    return Look(Kind.SPECIAL, ident, what, uid)


@contextmanager
def open_file(
    root: Path, relpath: PurePosixPath, expect: FileIdentity | None = None
) -> Iterator[int]:
    """A read descriptor of the regular file root/relpath, opened without following links
    (O_NOFOLLOW on every component) and, if `expect` is given, refused unless it is that file."""
    with open_folder(root, relpath.parent) as dir_fd:
        try:
            fd = os.open(
                relpath.name,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                dir_fd=dir_fd,
            )
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise LinkInPath(str(relpath)) from err
            raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Changed(errno.EINVAL, f"'{relpath}' is not a regular file")
        if expect is not None and not expect.unchanged_in(st):
            raise Changed(errno.ESTALE, f"'{relpath}' is not the file that was checked")
        yield fd
    finally:
        os.close(fd)


def read(root: Path, relpath: PurePosixPath, limit: int) -> bytes:
    """At most `limit` bytes of root/relpath (no link followed; a FIFO is never opened for
    blocking reads: O_NONBLOCK, then refused as not a regular file)."""
    with open_file(root, relpath) as fd:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def names(root: Path, folder: PurePosixPath) -> list[str]:
    """The entry names of root/folder (no link followed); empty if it cannot be listed."""
    try:
        with open_folder(root, folder) as fd:
            return os.listdir(fd)
    except OSError:
        return []


def unlink(root: Path, relpath: PurePosixPath, expect: FileIdentity) -> None:
    """Delete root/relpath only if it is, right now, the file that was checked."""
    with open_folder(root, relpath.parent) as fd:
        _check(fd, relpath, expect)
        os.unlink(relpath.name, dir_fd=fd)


def rename_out(root: Path, relpath: PurePosixPath, expect: FileIdentity | None, dest: Path) -> None:
    """Move root/relpath to `dest` (created by the caller's side, outside editors' reach) only
    if it is a regular file and, when `expect` is given, the file that was checked. The source
    is named through a descriptor walked without links, so a link swapped into the path
    cannot redirect the move to a file outside the drop folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open_folder(root, relpath.parent) as src_fd:
        st = _check(src_fd, relpath, expect)
        dest_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                os.rename(relpath.name, dest.name, src_dir_fd=src_fd, dst_dir_fd=dest_fd)
            except OSError as err:
                if err.errno != errno.EXDEV:
                    raise
                _copy_across(src_fd, relpath, st, dest_fd, dest.name)
        finally:
            os.close(dest_fd)


def _check(dir_fd: int, relpath: PurePosixPath, expect: FileIdentity | None) -> os.stat_result:
    st = os.stat(relpath.name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise Changed(errno.EINVAL, f"'{relpath}' is not a regular file")
    if expect is not None and not expect.unchanged_in(st):
        raise Changed(errno.ESTALE, f"'{relpath}' changed since it was checked")
    return st


def _copy_across(
    src_fd: int, relpath: PurePosixPath, st: os.stat_result, dest_fd: int, name: str
) -> None:
    """Another file system: copy under a temporary name, fsync, rename, then remove the
    source, so a crash leaves the source or a whole copy, never half a file."""
    tmp = name + ".partial"
    fin = os.open(relpath.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        if os.fstat(fin).st_ino != st.st_ino:
            raise Changed(errno.ESTALE, f"'{relpath}' changed while it was being moved")
        fout = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=dest_fd
        )
        try:
            while os.sendfile(fout, fin, None, 8 << 20):
                pass
            os.fsync(fout)
        finally:
            os.close(fout)
    finally:
        os.close(fin)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dest_fd)
    os.rename(tmp, name, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
    os.unlink(relpath.name, dir_fd=src_fd)
