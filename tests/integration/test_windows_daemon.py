"""Issue 14 through the real daemon and the ascp simulator: a session crossing from one window
into another gets RATE and is not restarted; outside every window nothing starts and STATUS=
says which window it waits for; `hotfolder rate` reaches a running session through the
daemon's control socket and the log names who; check-config explains overlaps and gaps, and
`status` prints the waiting line. The wall clock is the real one shifted to a chosen instant,
which the test moves; the zone is UTC (TZ)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from hotfolder.cli.main import main
from hotfolder.clock import SystemClock
from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.service.sd_notify import Notifier
from tests import manifests
from tests.helpers import ascp_config, running, sim_sessions, wait_until

MB = 1_000_000
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)


class ShiftedClock(SystemClock):
    """The real clock, its wall time moved to `at` and moved on by `shift`."""

    def __init__(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def shift(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")  # transfer.schedule.local_zone reads it


def drop(tmp: Path, size: int) -> None:
    d = tmp / "drop"
    (d / "my_video.mov").write_bytes(bytes(range(256)) * (size // 256))
    (d / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item(thumb=None, caption=None)))


def rates(tmp: Path) -> list[int]:
    log = tmp / "sim" / "rates.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line)["kbps"] for line in lines]


def bytes_done(daemon: Any) -> int:
    return sum(r.bytes_done for r in daemon.journal.rows())


def test_a_session_crossing_into_the_next_window_gets_its_rate(tmp_path: Path) -> None:
    windows = [
        {"from": "12:00", "to": "12:01", "rate": "80Mbps"},  # 10 MB/s
        {"from": "12:01", "to": "13:00", "rate": "16Mbps"},  # 2 MB/s
    ]
    cfg = config.load(ascp_config(tmp_path, rate=10 * MB, schedule=windows))
    clock = ShiftedClock(MONDAY_NOON)
    drop(tmp_path, 40 * MB)
    with capture_logs() as logs, running(cfg, clock=clock, shutdown_grace=0.1) as daemon:
        wait_until(lambda: bytes_done(daemon) >= 2 * MB, timeout=30, what="2 MB sent")
        clock.shift(60)  # 12:01:30: the second window
        wait_until(lambda: rates(tmp_path) == [16_000], what="RATE at the window change")
        assert daemon.journal.counts().get(State.SENDING_MEDIA) == 1, "still the same session"
    starts = (tmp_path / "sim" / "counter").read_text().split()
    assert starts == ["1"], "the session was never stopped and started again"
    sent = [e for e in logs if e["event"] == "rate changed while sending"]
    assert [(e["rate"], e["was"], e["because"]) for e in sent] == [("16M", "80M", "window")]


def test_nothing_starts_outside_every_window_and_status_says_when(tmp_path: Path) -> None:
    path = ascp_config(tmp_path, schedule=[{"from": "20:00", "to": "07:00"}])
    cfg = config.load(path)
    clock = ShiftedClock(MONDAY_NOON)
    said: list[str] = []
    notifier = Notifier(said.append, {"NOTIFY_SOCKET": "@test"})
    drop(tmp_path, MB)
    with running(cfg, clock=clock, notifier=notifier) as daemon:
        wait_until(lambda: daemon.journal.counts().get(State.READY) == 1, what="ready")
        words = "target aspera: 1 ready, waiting for the 20:00 window (mon 2026-11-23 20:00 UTC"
        wait_until(lambda: any(words in s for s in said), what="STATUS= to say the wait")
        assert sim_sessions(tmp_path) == []
        clock.shift(8 * 3600)  # 20:00:30
        wait_until(
            lambda: daemon.journal.counts().get(State.COMPLETE) == 1,
            timeout=30,
            what="the submission to go once the window opens",
        )


def test_hotfolder_rate_changes_a_running_session_through_the_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ascp_config(tmp_path, rate=10 * MB, target_rate="80Mbps")
    cfg = config.load(path)
    drop(tmp_path, 40 * MB)
    with capture_logs() as logs, running(cfg, shutdown_grace=0.1) as daemon:
        wait_until(lambda: bytes_done(daemon) >= 2 * MB, timeout=30, what="2 MB sent")
        code = main(["--config", str(path), "rate", "aspera", "16Mbps", "--for", "2h"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "16M set by" in out
        assert "1 running session follows it" in out
        wait_until(lambda: rates(tmp_path) == [16_000], what="RATE sent to the session")
    changed = [e for e in logs if e["event"] == "rate changed by an operator"]
    assert len(changed) == 1
    assert f"(uid {os.getuid()}, pid {os.getpid()}" in changed[0]["who"]
    assert changed[0]["rate"] == "16M"
    sent = [e for e in logs if e["event"] == "rate changed while sending"]
    assert [(e["because"], e["who"]) for e in sent] == [("operator", changed[0]["who"])]


def test_hotfolder_rate_without_a_daemon_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ascp_config(tmp_path)
    assert main(["--config", str(path), "rate", "aspera", "16Mbps"]) == 1
    assert "no daemon answers on" in capsys.readouterr().err


def with_schedule(tmp: Path, schedule: list[dict[str, Any]]) -> Path:
    path = ascp_config(tmp)
    data = yaml.safe_load(path.read_text())
    data["targets"]["aspera"]["schedule"] = schedule
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_config_explains_an_overlap_and_a_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_schedule(
        tmp_path,
        [
            {"days": "mon-fri", "from": "20:00", "to": "07:00", "rate": "900Mbps"},
            {"days": "mon-fri", "from": "06:00", "to": "20:00", "rate": "100Mbps"},
        ],
    )
    assert main(["--config", str(path), "check-config", "--config-only"]) == 0
    out = capsys.readouterr().out
    assert "target aspera's transfer windows:" in out
    assert "overlap: windows 1 and 2 both cover tue 06:00-07:00; window 1 applies there" in out
    assert "gap: no window covers sat 07:00 to mon 06:00" in out


def test_status_says_which_window_ready_work_waits_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A window that is closed now, whatever the time the test runs at: it opens in 2 hours.
    opens = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    path = with_schedule(tmp_path, [{"from": f"{opens:%H:%M}", "to": f"{closes:%H:%M}"}])
    cfg = config.load(path)
    drop(tmp_path, MB)
    with running(cfg) as daemon:
        wait_until(lambda: daemon.journal.counts().get(State.READY) == 1, what="ready")
        assert main(["--config", str(path), "status"]) == 0
    out = capsys.readouterr().out
    assert f"target aspera: 1 ready, waiting for the {opens:%H:%M} window (" in out
