"""What the journal remembers about a manifest seen in a drop folder (the tracker's `Known`).

A submission's id comes from where and what its manifest is (model.submission_id). Those
bytes can come back: ext4 reuses the inode of a deleted file, and `cp -p`, `rsync -t` or the
Finder keep the mtime, so a manifest dropped again after we archived or deleted the first one
has the same id. What tells the two apart is what we did: if we took the earlier manifest away
(archive, delete, quarantine), a manifest with its bytes in the drop folder is a new drop and
gets the next generation, `<id>~2`; if we left it there (`after_success: keep`, held, or a
failure that could not move it), it is the same submission and stays decided.

`after_success: keep` also leaves a marker per delivered manifest in the state dir, so a kept
submission is still recognised if the journal is lost.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hotfolder.durable import durable_write
from hotfolder.model import IN_FLIGHT, State
from hotfolder.state.port import JournalPort
from hotfolder.state.rows import GENERATION_MARK

KEPT_DIR = "kept"


class JournalKnown:
    def __init__(self, journal: JournalPort, state_dir: Path) -> None:
        self.journal = journal
        self.kept = state_dir / KEPT_DIR

    def resolve(self, base: str) -> str | None:
        row = self.journal.latest_generation(base)
        if row is None:
            return None if (self.kept / base).exists() else base
        if row.state is State.PENDING:
            return row.id
        if row.detail.get("manifest_removed"):
            return next_generation(row.id)
        return None

    def in_flight(self, sid: str) -> bool:
        state = self.journal.state_of(sid)
        return state is State.READY or state in IN_FLIGHT

    def remember_kept(self, sid: str) -> None:
        """A kept manifest was delivered: survive a lost journal (written once, fsync'd)."""
        with contextlib.suppress(OSError):  # the journal still knows; this is a second proof
            durable_write(self.kept / base_of(sid), sid + "\n")


def base_of(sid: str) -> str:
    return sid.split(GENERATION_MARK, 1)[0]


def next_generation(sid: str) -> str:
    base, _, generation = sid.partition(GENERATION_MARK)
    return f"{base}{GENERATION_MARK}{int(generation or 1) + 1}"
