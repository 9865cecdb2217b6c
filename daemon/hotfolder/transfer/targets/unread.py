"""Proof that ascp never read the manifest's staged copy: its access time.

The gate (ascp_gate) opens after the attempt marker is durable, and from then on only a
receipt could tell whether the manifest left: a daemon killed in ascp's login (seconds of SSH
and FASP set-up) was held for an operator though no byte of the manifest could have left.
The staged copy's access time tells it. The copy is made with an access time of 0; any
read() or mmap() of it moves that to the time of the read before the data reaches ascp
(Linux's `touch_atime`, under relatime and strictatime alike: an access time at or before
the modification time is always updated). ascp, killed with us by PR_SET_PDEATHSIG, runs no
more code after that: an access time still 0 when we look proves no byte was read, so none
left.

The proof is only as good as the record of the read, so it counts only when
- the state dir recorded access times when the session ran (a `noatime` mount does not: a
  probe file read just before, written into the marker);
- this ascp's reads were seen to move the access time: a program may read with O_NOATIME,
  and no test here can watch the real client read (it stops at the server's licence). So a
  manifest session that completed with its copy read is what teaches it, per ascp binary
  (`ReadsSeen`); until then, and for a binary that never shows its reads, nothing changes;
- the machine did not restart since (an access time is written back lazily: after a power
  cut the disk may still say 0; the marker names the boot it was written in).
Otherwise the manifest is held for an operator, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hotfolder.durable import durable_write

#: The access time a staged copy is made with: "never read".
UNREAD = 0
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""  # no proof can rest on a boot nobody can name


def seal(path: Path) -> None:
    """Mark a fresh copy as never read (its modification time is kept)."""
    os.utime(path, ns=(UNREAD, path.stat().st_mtime_ns))


def never_read(path: Path) -> bool:
    try:
        return path.stat().st_atime_ns == UNREAD
    except OSError:
        return False  # gone: nothing proves it was not read first


def reads_are_recorded(probe: Path) -> bool:
    """Does the file system `probe` (a name of our own) is on record a read in the access
    time (no `noatime`)?"""
    try:
        probe.write_bytes(b"?")
        seal(probe)
        with probe.open("rb") as f:
            f.read(1)
        return not never_read(probe)
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


class ReadsSeen:
    """Whether this ascp binary was seen to move a staged copy's access time, kept in the
    target's work dir (a new or upgraded binary must show it again)."""

    def __init__(self, ascp_path: str, work_dir: Path) -> None:
        self.ascp_path = ascp_path
        self.record = work_dir / "ascp-reads-seen.json"

    def _binary(self) -> str | None:
        found = shutil.which(self.ascp_path)
        if found is None:
            return None
        try:
            real = Path(found).resolve()
            st = real.stat()
        except OSError:
            return None
        return json.dumps({"ascp": str(real), "size": st.st_size, "mtime_ns": st.st_mtime_ns})

    def known(self) -> bool:
        binary = self._binary()
        try:
            return binary is not None and self.record.read_text(encoding="utf-8") == binary
        except OSError:
            return False

    def learn(self, staged: Path) -> None:
        """After a manifest session that completed: its copy's access time moved?"""
        binary = self._binary()
        if binary is None or never_read(staged) or self.known():
            return
        with contextlib.suppress(OSError):  # learnt at the next completed session
            durable_write(self.record, binary)


@dataclass(frozen=True, slots=True)
class Witness:
    """What an attempt marker says of the session that wrote it: the boot it ran in, whether
    its state dir recorded reads then, and whether its ascp's reads were known to show."""

    boot: str
    reads_recorded: bool
    ascp_reads_seen: bool

    def text(self) -> str:
        data = {
            "boot_id": self.boot,
            "reads_recorded": self.reads_recorded,
            "ascp_reads_seen": self.ascp_reads_seen,
        }
        return json.dumps(data) + "\n"

    @classmethod
    def now(cls, probe: Path, ascp_reads_seen: bool) -> Witness:
        return cls(boot_id(), reads_are_recorded(probe), ascp_reads_seen)

    @classmethod
    def of(cls, marker: Path) -> Witness | None:
        """The marker's witness; None for one that names none (written before this existed)
        or that cannot be read."""
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
            return cls(
                str(data["boot_id"]),
                data["reads_recorded"] is True,
                data["ascp_reads_seen"] is True,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def vouches(self) -> bool:
        """A read in the session that wrote this would show in the access time now."""
        same_boot = self.boot != "" and self.boot == boot_id()
        return self.reads_recorded and self.ascp_reads_seen and same_boot


NO_WITNESS = Witness("", reads_recorded=False, ascp_reads_seen=False)


def proven_unread(marker: Path, staged: Path) -> bool:
    """The session whose gate wrote `marker` never read `staged`, so none of it left."""
    witness = Witness.of(marker)
    return witness is not None and witness.vouches() and never_read(staged)
