"""The daemon as systemd sees it: a real process, a NOTIFY_SOCKET the test binds, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import manifests
from tests.helpers import hotfolder, wait_until, write_config


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.path = path
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def saw(self, text: str) -> bool:
        return any(text in m for m in self.drain())


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.sock.close()


def start(config: Path, notify: NotifySocket) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    with open(config.parent / "daemon.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hotfolder", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def log_of(config: Path) -> str:
    return (config.parent / "daemon.log").read_text()


def test_ready_status_watchdog_and_stopping(tmp_path: Path, notify: NotifySocket) -> None:
    config = write_config(tmp_path)
    (tmp_path / "drop" / "a.mov").write_bytes(b"a")
    (tmp_path / "drop" / "m.xml").write_text(
        manifests.ooyala(manifests.ooyala_item("a.mov", None, None))
    )
    daemon = start(config, notify)
    try:
        wait_until(lambda: notify.saw("READY=1"), what="READY=1")
        wait_until(lambda: notify.saw("1 complete"), what="STATUS= with the completed one")
        wait_until(
            lambda: sum("WATCHDOG=1" in m for m in notify.drain()) >= 2,
            what="the watchdog being fed",
        )
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    messages = notify.drain()
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=" in ready
    assert any(m.startswith("STATUS=") and "sending" in m and "held" in m for m in messages)
    assert "STOPPING=1" in messages[-1]


def test_sighup_reloads_and_refuses_an_invalid_config(tmp_path: Path, notify: NotifySocket) -> None:
    # An hour's stability window: a drop goes out only once the reload's 0.2 s applies.
    config = write_config(tmp_path, stability_seconds=3600)
    daemon = start(config, notify)
    try:
        wait_until(lambda: notify.saw("READY=1"), what="READY=1")
        slow = config.read_text()
        assert "stability_seconds: 3600" in slow
        config.write_text(slow.replace("stability_seconds: 3600", "stability_seconds: oops"))
        daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in log_of(config), what="the refusal")
        config.write_text(slow.replace("stability_seconds: 3600", "stability_seconds: 0.2"))
        # the refused reload must not have killed it: a valid one still works, and applies
        daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: "config reloaded" in log_of(config), what="the reload")
        (tmp_path / "drop" / "a.mov").write_bytes(b"a")
        (tmp_path / "drop" / "m.xml").write_text(
            manifests.ooyala(manifests.ooyala_item("a.mov", None, None))
        )
        wait_until(lambda: notify.saw("1 complete"), what="a delivery after the reloads")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert "stability_seconds" in log_of(config), "the refusal must say what is wrong"


def test_a_start_under_systemd_waits_for_a_daemon_still_on_its_state_dir(
    tmp_path: Path, notify: NotifySocket
) -> None:
    """A restart while a hand-run daemon holds the state dir: refused, it would use up the
    unit's start limit; it waits, tells systemd so, and starts once the other is gone."""
    config = write_config(tmp_path)
    by_hand = subprocess.Popen(
        [sys.executable, "-m", "hotfolder", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service = None
    try:
        wait_until((tmp_path / "state" / "control" / "hotfolder.sock").exists)
        service = start(config, notify)
        wait_until(lambda: notify.saw("EXTEND_TIMEOUT_USEC="), what="still starting")
        assert notify.saw(f"waiting for pid {by_hand.pid}")
        assert not notify.saw("READY=1")
        assert service.poll() is None, log_of(config)
        by_hand.kill()
        by_hand.wait()
        wait_until(lambda: notify.saw("READY=1"), what="READY=1 once the state dir is free")
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0
    finally:
        for proc in (by_hand, service):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_lock_file_that_cannot_be_opened_is_an_admin_s_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "daemon.lock").mkdir()  # what no daemon of this user can open
    run = hotfolder("run", "--once", "--config", str(config))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot open" in run.stderr
    assert "chown" in run.stderr
