"""Has a file stopped changing? Pure bookkeeping over observations and events.

A file is stable when its identity (size, mtime, ctime, inode) has stayed the same, and no
watchdog event touched it, for the whole window. Where inotify tells us (a local writer), a file
that was modified and not closed since is still being written, however long the writer pauses;
that signal only ever lengthens the wait, and `writer_cap` bounds it in case a close is lost.
The first sighting starts the window: an old mtime proves nothing about a copier that is still
writing. A zero-byte file is often a copier's
placeholder, so it needs three windows. Time comes from the caller (a Clock), never from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from hotfolder.model import FileIdentity

EMPTY_FILE_FACTOR = 3


@dataclass(slots=True)
class _Seen:
    identity: FileIdentity | None  # None: looked for and not there
    since: float  # when this identity was first seen
    last_event: float = float("-inf")


class StabilityTracker:
    def __init__(self, window: float, writer_cap: float = 3600.0) -> None:
        self.window = window
        self.writer_cap = writer_cap
        self._seen: dict[PurePosixPath, _Seen] = {}
        self._writing: dict[PurePosixPath, float] = {}  # modified, not closed since: when

    def written(self, relpath: PurePosixPath, now: float) -> None:
        """inotify IN_MODIFY: a writer has the file open."""
        self._writing.setdefault(relpath, now)

    def closed(self, relpath: PurePosixPath) -> None:
        """inotify IN_CLOSE_WRITE: that writer is done with it."""
        self._writing.pop(relpath, None)

    def being_written(self, relpath: PurePosixPath, now: float) -> bool:
        since = self._writing.get(relpath)
        return since is not None and now - since < self.writer_cap

    def event(self, relpath: PurePosixPath, now: float) -> None:
        """A watchdog event touched the path: whatever we saw, the window restarts."""
        seen = self._seen.get(relpath)
        if seen is None:
            self._seen[relpath] = _Seen(None, now, now)
        else:
            seen.last_event = now

    def observe(self, relpath: PurePosixPath, identity: FileIdentity | None, now: float) -> None:
        seen = self._seen.get(relpath)
        if seen is None:
            self._seen[relpath] = _Seen(identity, now)
        elif seen.identity != identity:
            seen.identity = identity
            seen.since = now

    def identity(self, relpath: PurePosixPath) -> FileIdentity | None:
        seen = self._seen.get(relpath)
        return seen.identity if seen else None

    def stable_at(self, relpath: PurePosixPath) -> float | None:
        """When the file becomes stable if nothing changes; None while it is missing."""
        seen = self._seen.get(relpath)
        if seen is None or seen.identity is None:
            return None
        window = self.window * (EMPTY_FILE_FACTOR if seen.identity.size == 0 else 1)
        return max(seen.since, seen.last_event) + window

    def is_stable(self, relpath: PurePosixPath, now: float) -> bool:
        at = self.stable_at(relpath)
        return at is not None and now >= at and not self.being_written(relpath, now)

    def forget(self, relpath: PurePosixPath) -> None:
        self._seen.pop(relpath, None)
        self._writing.pop(relpath, None)

    def __len__(self) -> int:
        """How many paths it remembers (memory stays flat once events are pruned)."""
        return len(self._seen)

    def prune_events(self, older_than: float) -> None:
        """Drop paths only an event ever touched, once the event can no longer matter."""
        stale = [
            p for p, s in self._seen.items() if s.identity is None and s.last_event < older_than
        ]
        for path in stale:
            del self._seen[path]
            self._writing.pop(path, None)
