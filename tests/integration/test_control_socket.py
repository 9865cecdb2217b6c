"""The control channel (issue 14): `hotfolder rate` reaches a Link in the daemon through a
private UNIX socket, and the change is logged with who made it, as the kernel says."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hotfolder.clock import FakeClock
from hotfolder.service.control_socket import (
    ControlServer,
    link_commands,
    request,
    socket_path,
)
from hotfolder.transfer.link import Link, LinkSettings, RateSource

WALL = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def link() -> Link:
    return Link(
        "aspera", LinkSettings.from_options({"target_rate": "100M"}, UTC), FakeClock(wall=WALL)
    )


@pytest.fixture
def server(tmp_path: Path, link: Link) -> Iterator[ControlServer]:
    handle = link_commands({"aspera": link}, {"aspera": "ascp", "nas": "local"})
    srv = ControlServer(tmp_path, handle)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_rate_reaches_the_link_and_names_who_made_it(
    tmp_path: Path, server: ControlServer, link: Link
) -> None:
    link.attach()
    with capture_logs() as logs:
        reply = request(
            tmp_path, {"command": "rate", "target": "aspera", "rate": "300Mbps", "for": "2h"}
        )
    assert reply.ok, reply.message
    now = link.now()
    assert (now.rate, now.source) == ("300M", RateSource.OPERATOR)
    assert now.override is not None
    assert now.override.until == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    me = f"(uid {os.getuid()}, pid {os.getpid()}"  # from SO_PEERCRED, not from the request
    assert me in now.override.who
    assert reply.message.startswith("target 'aspera': 300M set by ")
    assert reply.message.endswith(
        "until 2026-11-23 14:00 UTC; 1 running session follows it within a second"
    )
    changed = [e for e in logs if e["event"] == "rate changed by an operator"]
    assert len(changed) == 1
    assert me in changed[0]["who"]


def test_the_client_cannot_say_who_it_is(tmp_path: Path, server: ControlServer, link: Link) -> None:
    request(tmp_path, {"command": "rate", "target": "aspera", "rate": "1G", "who": "mallory"})
    override = link.now().override
    assert override is not None
    assert "mallory" not in override.who


def test_clear_goes_back_to_the_target_rate(
    tmp_path: Path, server: ControlServer, link: Link
) -> None:
    request(tmp_path, {"command": "rate", "target": "aspera", "rate": "1G"})
    reply = request(tmp_path, {"command": "rate", "target": "aspera", "clear": True})
    assert (reply.ok, reply.message) == (True, "target 'aspera': back to 100M (target)")
    assert link.now().source is RateSource.TARGET


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (
            {"command": "rate", "target": "nas", "rate": "1G"},
            "target 'nas' is a local target: it has no rate",
        ),
        (
            {"command": "rate", "target": "nope", "rate": "1G"},
            "no target named 'nope' (known: aspera, nas)",
        ),
        ({"command": "rate", "target": "aspera", "rate": "80%"}, "'80%' is a share of the link"),
        (
            {"command": "rate", "target": "aspera", "rate": "1G", "for": "soon"},
            "'soon' is not a duration",
        ),
        ({"command": "reboot"}, "unknown command 'reboot'"),
    ],
)
def test_refusals_say_why(
    tmp_path: Path, server: ControlServer, link: Link, payload: dict[str, object], answer: str
) -> None:
    reply = request(tmp_path, payload)
    assert not reply.ok
    assert reply.message.startswith(answer)
    assert link.now().source is RateSource.TARGET


def test_the_socket_is_private_and_goes_away(tmp_path: Path, link: Link) -> None:
    srv = ControlServer(tmp_path, link_commands({}, {}))
    srv.start()
    path = socket_path(tmp_path)
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(path.stat().st_mode)
    finally:
        srv.stop()
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        request(tmp_path, {"command": "rate"})


def test_a_stale_socket_is_replaced_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays; nobody listens
    first = ControlServer(tmp_path, link_commands({}, {}))
    first.start()
    try:
        with pytest.raises(OSError, match="another hotfolder daemon"):
            ControlServer(tmp_path, link_commands({}, {})).start()
    finally:
        first.stop()
