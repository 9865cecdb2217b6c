"""Is a watch folder there? An unmounted share is said once and probed with backoff; meanwhile
nothing in it is treated as deleted. Used by its watch's thread only."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import structlog

from hotfolder.intake.watch import FolderGuard, Presence

log = structlog.get_logger()

MAX_PROBE_BACKOFF = 60.0
PROBE_EVERY = 1.0


class Look(StrEnum):
    THERE = "there"
    BACK = "back"  # there again, or another folder now: watch it again and rescan
    AWAY = "away"


class Availability:
    def __init__(self, name: str, guard: FolderGuard | None = None) -> None:
        self.name = name
        self.guard = guard or FolderGuard()  # is the folder still the one we watch?
        self.root = Path()
        self.available = True
        self.next_probe = 0.0
        self.backoff = PROBE_EVERY

    def remember(self, root: Path) -> None:
        """The folder as it is now is the one watched (at each start of watching)."""
        self.root = root
        self.guard.remember(root)

    def lost(self) -> None:
        """inotify said the folder itself went: the next look probes."""
        self.guard.lost()

    def look(self, now: float, probe: bool = False) -> Look:
        """Between probes a folder that was there is taken as there, unless `probe`."""
        if self.available and now < self.next_probe and not probe:
            return Look.THERE
        presence = self.guard.check()  # a bare mount point is there but is not the share
        if presence.usable:
            self.next_probe, self.backoff = now + PROBE_EVERY, PROBE_EVERY
            if self.available and presence is not Presence.REPLACED:
                return Look.THERE
            self.available = True
            log.info("watch folder is back; rescanning", watch=self.name, found=str(presence))
            return Look.BACK
        if self.available:
            self.available = False
            log.warning(
                "watch folder unavailable; waiting for it (nothing is treated as deleted)",
                watch=self.name,
                path=str(self.root),
                found=str(presence),
                hint="check the share is mounted and readable by this user",
            )
        self.next_probe = now + self.backoff
        self.backoff = min(self.backoff * 2, MAX_PROBE_BACKOFF)
        return Look.AWAY
