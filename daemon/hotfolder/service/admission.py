"""May a ready submission start now? A pure verdict over disk space, the journal and the target
account's quota; the dispatcher gathers the facts and acts on the answer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hotfolder.assemble import rules
from hotfolder.model import Problem


class Verdict(StrEnum):
    GO = "go"
    WAIT_SPACE = "wait-space"  # a state or archive disk is nearly full
    WAIT_JOURNAL = "wait-journal"  # the journal file is not ours: nothing new is decided
    WAIT_QUOTA = "wait-quota"  # what is in flight to the same account leaves no room yet
    NEVER = "never"  # larger than the account holds at once: rejected


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    problem: Problem | None = None  # NEVER: why, for the report

    @property
    def waits(self) -> bool:
        return self.verdict in (Verdict.WAIT_SPACE, Verdict.WAIT_JOURNAL, Verdict.WAIT_QUOTA)


GO = Admission(Verdict.GO)


def admit(
    size: int, in_flight: int, quota: int, *, space_low: bool, journal_lost: bool
) -> Admission:
    """`size` bytes may start when the disks have room, the journal is ours, and they fit
    beside the `in_flight` bytes already going to the same account (`quota`, ingest rule)."""
    if space_low:
        return Admission(Verdict.WAIT_SPACE)
    if journal_lost:
        return Admission(Verdict.WAIT_JOURNAL)
    fits = rules.quota(size, in_flight, quota)
    if isinstance(fits, Problem):
        return Admission(Verdict.NEVER, fits)
    return GO if fits else Admission(Verdict.WAIT_QUOTA)


Statvfs = Callable[[Path], os.statvfs_result]


def low_on_space(
    folders: Iterable[Path], min_free: int, statvfs: Statvfs = os.statvfs
) -> dict[str, int]:
    """The folders with less than `min_free` bytes available, with what they have. A folder
    that cannot be asked (gone, no permission) is not counted as full."""
    low = {}
    for folder in folders:
        try:
            st = statvfs(folder)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize < min_free:
            low[str(folder)] = st.f_bavail * st.f_frsize
    return low
