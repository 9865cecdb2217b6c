"""Live rates against the ascp simulator (issue 14): a window change during a session sends
RATE and the session slows down without stopping; `at_window_end: pause` cancels at the end
and the next window resumes without sending finished files again; an operator's rate through
the control socket reaches the running session. Time is a FakeClock the test steps."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from structlog.testing import capture_logs

from hotfolder.clock import FakeClock
from hotfolder.service.control_socket import ControlServer, link_commands, request
from hotfolder.transfer.link import Link, LinkSettings
from hotfolder.transfer.targets.ascp import AscpSettings, AscpTarget
from hotfolder.transfer.targets.base import Session, TransferError
from hotfolder.transfer.targets.steering import WINDOW_CLOSED
from tests.helpers import SIMULATOR, sim_sessions, wait_until

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)
MB = 1_000_000


@dataclass
class Run:
    """One session on a thread, with every progress report timed."""

    target: AscpTarget
    session: Session
    samples: list[tuple[float, int]] = field(default_factory=list)
    error: BaseException | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Run:
        def main() -> None:
            try:
                self.target.send(self.session, self.progress, self.cancel)
            except BaseException as err:
                self.error = err

        self.thread = threading.Thread(target=main, name="session-under-test")
        self.thread.start()
        return self

    def progress(self, done: int) -> None:
        self.samples.append((time.monotonic(), done))

    def done(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(60)
        assert not self.thread.is_alive()


def simulated(tmp: Path, link: Link, rate: float) -> AscpTarget:
    (tmp / "server").mkdir()
    (tmp / "pw").write_text("pw\n")
    env = {"ASCP_SIM_ROOT": str(tmp / "server"), "ASCP_SIM_STATE": str(tmp / "sim")}
    env |= {"ASCP_SIM_RATE": str(rate), "ASCP_SIM_PASSWORD": "pw"}
    wrapper = tmp / "ascp"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    wrapper.write_text(
        f"#!/bin/sh\nexport {exports}\n"
        f'exec {shlex.quote(sys.executable)} {shlex.quote(str(SIMULATOR))} "$@"\n'
    )
    wrapper.chmod(0o755)
    settings = AscpSettings(
        name="aspera",
        host="127.0.0.1",
        user="editor",
        work_dir=tmp / "work",
        password_file=tmp / "pw",
        ascp_path=str(wrapper),
        destination="/in",
        target_rate="100M",
    )
    return AscpTarget(settings, link)


def media(tmp: Path, **sizes: int) -> Session:
    (tmp / "src").mkdir(exist_ok=True)
    files = []
    for name, size in sizes.items():
        (tmp / "src" / name).write_bytes(bytes(range(256)) * (size // 256))
        files.append((tmp / "src" / name, PurePosixPath(name)))
    return Session("sub-1", "media", tuple(files))


def link(clock: FakeClock, schedule: list[dict[str, Any]], **options: Any) -> Link:
    return Link("aspera", LinkSettings.from_options({"schedule": schedule, **options}, UTC), clock)


def throughput(samples: list[tuple[float, int]], lo: int, hi: int) -> float:
    """Bytes per second between the first report past `lo` bytes and the last below `hi`."""
    inside = [(t, b) for t, b in samples if lo <= b <= hi]
    (t0, b0), (t1, b1) = inside[0], inside[-1]
    return (b1 - b0) / (t1 - t0)


def rate_changes(tmp: Path) -> list[dict[str, Any]]:
    """The RATE commands the simulator applied, as it applied them."""
    log = tmp / "sim" / "rates.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall=MONDAY_NOON)


def test_a_window_change_sends_rate_and_the_session_slows_without_stopping(
    tmp_path: Path, clock: FakeClock
) -> None:
    ln = link(
        clock,
        [
            {"from": "12:00", "to": "12:01", "rate": "80Mbps"},  # 10 MB/s
            {"from": "12:01", "to": "13:00", "rate": "16Mbps"},  # 2 MB/s
        ],
    )
    run = Run(simulated(tmp_path, ln, rate=10 * MB), media(tmp_path, big=12 * MB)).start()
    with capture_logs() as logs:
        wait_until(lambda: run.done() >= 3 * MB, what="3 MB sent in the first window")
        clock.advance(60)  # 12:01:30: the second window
        changed_at = wait_until(lambda: rate_changes(tmp_path), what="RATE applied")[0]["at_byte"]
        wait_until(lambda: run.done() >= changed_at + MB, what="1 MB more after the change")
        run.cancel.set()  # enough seen; do not wait for the slow rest
        run.join()
    starts = [json.loads(s) for s in (tmp_path / "sim" / "counter").read_text().split()]
    assert starts == [1], "the session was never stopped and started again"
    rates = rate_changes(tmp_path)
    assert [r["kbps"] for r in rates] == [16_000]
    assert changed_at >= 3 * MB  # not before the window changed
    before = throughput(run.samples, 0, changed_at)
    after = throughput(run.samples, changed_at + 1, changed_at + MB)
    # The simulator sleeps for each chunk at the rate it was told: after the change the
    # session cannot go faster than 2 MB/s (a little slack for the report timing), and
    # before it went well beyond.
    assert after <= 2 * MB * 1.25
    assert before > 2 * MB * 1.25
    changes = [e for e in logs if e["event"] == "rate changed while sending"]
    assert [(e["rate"], e["was"], e["because"], e["window"]) for e in changes] == [
        ("16M", "80M", "window", 2)
    ]


def test_pause_at_the_window_end_then_resume_without_sending_finished_files(
    tmp_path: Path, clock: FakeClock
) -> None:
    ln = link(clock, [{"from": "12:00", "to": "12:01", "rate": "40Mbps"}], at_window_end="pause")
    session = media(tmp_path, small=1 * MB, big=8 * MB)
    target = simulated(tmp_path, ln, rate=2 * MB)
    first = Run(target, session).start()
    server = tmp_path / "server" / "in"
    wait_until(
        lambda: (server / "small").is_file() and first.done() >= 2 * MB,
        what="small complete and big under way",
    )
    clock.advance(60)  # 12:01:30: the window is over
    first.join()
    assert isinstance(first.error, TransferError)
    assert first.error.code == WINDOW_CLOSED
    assert "waiting for the 12:00 window (tue 2026-11-24 12:00 UTC" in first.error.message
    assert not (server / "big").exists()
    partial = (server / "big.partial").stat().st_size
    assert partial > 0

    clock.advance(24 * 3600 - 60)  # Tuesday 12:00:30, inside the next window
    second = Run(target, session).start()
    second.join()
    assert second.error is None
    for name in ("small", "big"):
        assert (server / name).read_bytes() == (tmp_path / "src" / name).read_bytes()
    resumed = sim_sessions(tmp_path)[-1]
    assert resumed["resume"] != "0"
    assert resumed["target_rate"] == "40M"  # ascp -l: the window's rate, not the target's
    # Only what was missing of big went again: small was not re-sent, big resumed.
    assert resumed["bytes"] == 8 * MB - partial


def test_a_session_started_outside_every_window_is_not_cut_off(
    tmp_path: Path, clock: FakeClock
) -> None:
    ln = link(clock, [{"from": "20:00", "to": "21:00"}], at_window_end="pause")
    run = Run(simulated(tmp_path, ln, rate=50 * MB), media(tmp_path, clip=2 * MB)).start()
    run.join()
    assert run.error is None


def test_an_operator_rate_reaches_the_running_session(tmp_path: Path, clock: FakeClock) -> None:
    ln = link(clock, [])
    control = ControlServer(tmp_path / "state", link_commands({"aspera": ln}, {"aspera": "ascp"}))
    control.start()
    try:
        run = Run(simulated(tmp_path, ln, rate=10 * MB), media(tmp_path, big=12 * MB)).start()
        wait_until(lambda: run.done() >= 1 * MB, what="the session under way")
        reply = request(
            tmp_path / "state", {"command": "rate", "target": "aspera", "rate": "8Mbps"}
        )
        assert reply.ok, reply.message
        assert "1 running session follows it" in reply.message
        wait_until(lambda: rate_changes(tmp_path), what="the RATE applied by ascp")
        run.cancel.set()
        run.join()
    finally:
        control.stop()
    assert [r["kbps"] for r in rate_changes(tmp_path)] == [8000]
