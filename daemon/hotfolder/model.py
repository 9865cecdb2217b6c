"""Plain data shared by every stage: file identities, manifests, submissions, states.

This is the leaf module: it imports nothing from the package, so every other module may use it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath


class State(StrEnum):
    """A submission's life, named like the Aspera desktop client's states so operators know them."""

    PENDING = "pending"  # seen: waiting for files or for them to settle
    READY = "ready"  # every file present and stable
    QUEUED = "queued"  # handed to a transfer worker
    SENDING_MEDIA = "sending-media"  # session 1: everything but the manifest
    MEDIA_SENT = "media-sent"  # session 1 confirmed; the manifest has not left yet
    SENDING_MANIFEST = "sending-manifest"  # session 2: the manifest alone
    COMPLETE = "complete"  # the manifest was delivered
    FAILED = "failed"  # quarantined with a report
    HELD = "held"  # needs an operator (e.g. delivery of the manifest cannot be proven)


#: States in which the daemon owns the files and must not start the submission over.
IN_FLIGHT = frozenset({State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT, State.SENDING_MANIFEST})
#: States that end a submission: a rescan that finds the same manifest again leaves it alone.
FINAL = frozenset({State.COMPLETE, State.FAILED, State.HELD})


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What we compare to decide a file has not changed: any difference means 'still moving'."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int = 0  # 0: not recorded (journals written before it was)

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def unchanged_in(self, st: os.stat_result) -> bool:
        """The same file with the same bytes as when pinned? ctime is left out: it moves when
        a file is merely renamed or moved between folders, which changes nothing that is sent.
        The device counts: an inode number means nothing on another file system."""
        return self.same_as(FileIdentity.of(st))

    def portable(self) -> FileIdentity:
        """This identity as another workstation on a shared folder sees it too: size and
        mtime (the server's), no inode or device (each NFS or SMB client may number a file
        its own way). An inode of 0 means 'not recorded': Linux never gives it to a file."""
        return FileIdentity(self.size, self.mtime_ns, self.ctime_ns, 0, 0)

    def same_as(self, other: FileIdentity) -> bool:
        """`unchanged_in`, for two identities (ctime left out; device only where known;
        inode only where known: see `portable`)."""
        if 0 in (self.inode, other.inode):
            return (other.size, other.mtime_ns) == (self.size, self.mtime_ns)
        same = (other.size, other.mtime_ns, other.inode) == (self.size, self.mtime_ns, self.inode)
        return (same and 0 in (self.device, other.device)) or other == self


class ManifestFormat(StrEnum):
    OOYALA_MRSS = "ooyala-mrss"
    OOYALA_CSV = "ooyala-csv"
    BRIGHTCOVE_MRSS = "brightcove-mrss"


class RefKind(StrEnum):
    MEDIA = "media"
    THUMBNAIL = "thumbnail"
    CAPTION = "caption"


@dataclass(frozen=True, slots=True)
class Reference:
    """One file a manifest names, as written in the manifest."""

    kind: RefKind
    name: str  # exactly as written: checked for safety before it is turned into a path
    item: int  # 0-based index of the manifest item that names it
    line: int | None = None  # where the manifest says it, for the editor's report
    lang: str | None = None  # captions only


@dataclass(frozen=True, slots=True)
class ManifestItem:
    title: str | None
    guid: str | None
    references: tuple[Reference, ...]
    remote_url: str | None = None  # remote assets: nothing local to upload
    metadata: tuple[tuple[str, str], ...] = ()  # custom fields (CSV columns we do not know)


@dataclass(frozen=True, slots=True)
class Manifest:
    format: ManifestFormat
    items: tuple[ManifestItem, ...]
    priority: int | None = None  # the manifest's own (0-9), used only where a watch allows it

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(ref for item in self.items for ref in item.references)


@dataclass(frozen=True, slots=True)
class SubmissionFile:
    """A file of a submission: where it is in the watch folder and where it goes at the target."""

    relpath: PurePosixPath  # relative to the watch folder
    dest: PurePosixPath  # relative to the target root (i.e. to the manifest's own folder)
    identity: FileIdentity


@dataclass(frozen=True, slots=True)
class Submission:
    """One manifest and every local file it references, each pinned to its settled identity."""

    id: str
    watch: str
    manifest: SubmissionFile
    media: tuple[SubmissionFile, ...]
    format: ManifestFormat

    @property
    def files(self) -> tuple[SubmissionFile, ...]:
        return (*self.media, self.manifest)

    @property
    def total_bytes(self) -> int:
        return sum(f.identity.size for f in self.files)


def submission_id(
    watch: str, manifest_relpath: PurePosixPath, identity: FileIdentity, *, shared: bool = False
) -> str:
    """A stable id: the same manifest file (same place, same identity) is the same submission.

    Readable at a glance (the manifest's stem) and unique (a hash of where and what it is), so a
    restarted daemon recognises a submission it already delivered.

    `shared`: the folder is seen by several workstations (a fleet), which must all derive the
    same id for one manifest. The inode is left out: an NFS or SMB client may number a file
    its own way (SMB with noserverino invents inode numbers), while size and mtime come from
    the server. A single workstation keeps the inode, so ids in existing journals stay valid.
    """
    i = identity
    key = f"{watch}\0{manifest_relpath}\0{i.size}\0{i.mtime_ns}"
    if not shared:
        key += f"\0{i.inode}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in manifest_relpath.stem)[:40]
    return f"{stem}-{digest}"


@dataclass(frozen=True, slots=True)
class Problem:
    """A reason a submission cannot go, written for the editor who dropped it."""

    code: str  # machine-readable, stable: e.g. "missing-file", "malformed-manifest"
    message: str  # what is wrong
    hint: str = ""  # what to do about it
    path: str | None = None
    line: int | None = None
