"""What the running daemon tells the window: the main loop's heartbeat (what /healthz waits
for) and whether each watch folder is there (hotfolder_watch_available)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfolder.config import settings as config
from hotfolder.metrics import Counters
from hotfolder.service import daemon as daemon_module
from hotfolder.service import watch_loop
from tests.helpers import running, wait_until, write_config


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> Counters:
    """Counters of this test's own: the process-wide ones carry earlier tests' daemons."""
    fresh = Counters()
    monkeypatch.setattr(daemon_module, "COUNTERS", fresh)
    monkeypatch.setattr(watch_loop, "COUNTERS", fresh)
    return fresh


def test_the_main_loop_feeds_the_heartbeat(tmp_path: Path, counters: Counters) -> None:
    cfg = config.load(write_config(tmp_path))
    assert counters.snapshot().heartbeat_age is None
    with running(cfg):
        wait_until(lambda: counters.snapshot().heartbeat_age is not None, what="a heartbeat")
        assert counters.snapshot().journal_ok


def test_a_watch_folder_that_goes_away_is_counted_unavailable_and_back(
    tmp_path: Path, counters: Counters
) -> None:
    cfg = config.load(write_config(tmp_path, poll_interval=0.1))
    drop, away = tmp_path / "drop", tmp_path / "away"
    with running(cfg):
        wait_until(lambda: counters.snapshot().available == {"w": True}, what="available")
        drop.rename(away)
        wait_until(lambda: counters.snapshot().available == {"w": False}, what="unavailable")
        away.rename(drop)
        wait_until(lambda: counters.snapshot().available == {"w": True}, what="back", timeout=30)
