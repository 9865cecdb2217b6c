"""A watch's tracker belongs to its watch thread: nobody else may touch it (issue 15's race:
the main loop walked the trackers' dicts while watch threads inserted into them)."""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from hotfolder.assemble.decisions import Decision
from hotfolder.assemble.tracker import WatchSettings, WatchTracker
from hotfolder.config import settings as config
from hotfolder.service import daemon
from tests import manifests
from tests.helpers import FAST_RETRY, running, wait_until, write_config


class WatchedTracker(WatchTracker):
    """Notes which thread calls it; once its watch thread has run, any other caller is a race."""

    calls: list[str]
    made: list[WatchedTracker] = []  # noqa: RUF012 - the test finds the daemon's this way

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls = []
        WatchedTracker.made.append(self)

    def _note(self) -> None:
        self.calls.append(threading.current_thread().name)

    def on_event(self, relpath: PurePosixPath, now: float, kind: str = "") -> None:
        self._note()
        super().on_event(relpath, now, kind)

    def check(self, now: float, everything: bool = False) -> list[Decision]:
        self._note()
        return super().check(now, everything)

    def next_due(self) -> float:
        self._note()
        return super().next_due()

    def reconfigure(self, settings: WatchSettings) -> None:
        self._note()
        super().reconfigure(settings)


def strangers(tracker: WatchedTracker) -> set[str]:
    calls = list(tracker.calls)
    owner = "watch-w"
    started = calls.index(owner) if owner in calls else len(calls)
    return {name for name in calls[started:] if name != owner}


def drop_twenty(drop: Path) -> None:
    for i in range(20):
        (drop / f"v{i}.mov").write_bytes(b"v")
        item = manifests.ooyala_item(f"v{i}.mov", None, None, guid=str(i))
        (drop / f"m{i}.xml").write_text(manifests.ooyala(item))


def test_run_once_asks_the_watch_not_its_tracker_whether_it_is_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "WatchTracker", WatchedTracker)
    cfg = config.load(write_config(tmp_path, stability_seconds=0.2))
    drop_twenty(tmp_path / "drop")
    WatchedTracker.made.clear()
    d = daemon.Daemon(cfg, retry=FAST_RETRY)
    (tracker,) = WatchedTracker.made
    d.run(once=True)  # its main loop asks "idle?" every turn while the watch thread works
    assert strangers(tracker) == set(), "another thread touched the watch's tracker"


def test_a_reload_reaches_the_tracker_through_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "WatchTracker", WatchedTracker)
    path = write_config(tmp_path)
    WatchedTracker.made.clear()
    with running(config.load(path)) as d:
        (tracker,) = WatchedTracker.made
        drop_twenty(tmp_path / "drop")
        path.write_text(
            path.read_text().replace("stability_seconds: 0.5", "stability_seconds: 0.7")
        )
        d.request_reload()
        wait_until(lambda: tracker.settings.stability_seconds == 0.7, what="reload applied")
    assert strangers(tracker) == set(), "another thread touched the watch's tracker"
