"""Operations: notifications to a real SMTP server and a webhook on loopback, batched; a
nearly full disk pauses new work and resumes it, with the journal intact."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from hotfolder.config import settings as config
from hotfolder.model import State
from tests import manifests
from tests.helpers import running, wait_until, write_config


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], str]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="webhook")
    thread.start()
    yield received, f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_fifty_failures_are_one_email_and_one_webhook(
    tmp_path: Path, smtp: tuple[Inbox, int], webhook: tuple[list[dict[str, Any]], str]
) -> None:
    inbox, port = smtp
    posts, url = webhook
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["notifications"] = {
        "batch_seconds": 1,
        "digest_every": 0,
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "from": "hotfolder@test",
            "to": ["ingest@test"],
        },
        "webhook": {"url": url},
    }
    path.write_text(yaml.safe_dump(data))
    drop = tmp_path / "drop"
    with running(config.load(path)) as daemon:
        for i in range(50):  # a burst of broken manifests
            (drop / f"bad{i:02}.xml").write_text("<rss><channel>")
        wait_until(lambda: daemon.journal.counts().get(State.FAILED) == 50, timeout=30)
        wait_until(lambda: sum(p["count"] for p in posts) == 50, what="the webhook")
        wait_until(lambda: len(inbox.messages) >= 1, what="the e-mail")
    assert len(inbox.messages) <= 2, "a burst must be batched, not one mail per failure"
    assert len(posts) == len(inbox.messages)
    mail = b"".join(m.content for m in inbox.messages).decode()
    assert "submissions failed" in mail
    assert "not well-formed" in mail
    assert mail.count("REPORT.txt") == 50
    assert {e["kind"] for p in posts for e in p["events"]} == {"failed"}


def test_a_nearly_full_disk_pauses_new_work_and_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(state)], check=True)
    try:
        path = write_config(tmp_path)
        data = yaml.safe_load(path.read_text())
        data["min_free_bytes"] = 2 * 1024 * 1024
        data["watches"][0]["archive_dir"] = str(state / "archive")
        path.write_text(yaml.safe_dump(data))
        filler = state / "filler"
        filler.write_bytes(b"\0" * (3 * 1024 * 1024))  # leaves about 1 MiB
        drop = tmp_path / "drop"
        with running(config.load(path)) as daemon:
            (drop / "a.mov").write_bytes(b"a")
            (drop / "m.xml").write_text(
                manifests.ooyala(manifests.ooyala_item("a.mov", None, None))
            )
            wait_until(lambda: daemon.space_low, what="the pause")
            wait_until(lambda: daemon.journal.counts().get(State.READY) == 1)
            assert not (tmp_path / "ingest" / "m.xml").exists()
            filler.unlink()  # space comes back
            wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
        with sqlite3.connect(state / "journal.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_deliveries_come_as_a_periodic_digest(
    tmp_path: Path, webhook: tuple[list[dict[str, Any]], str]
) -> None:
    posts, url = webhook
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["notifications"] = {"digest_every": 1, "webhook": {"url": url}}
    path.write_text(yaml.safe_dump(data))
    drop = tmp_path / "drop"
    with running(config.load(path)) as daemon:
        for name in ("one", "two"):
            (drop / f"{name}.mov").write_bytes(b"x")
            (drop / f"{name}.xml").write_text(
                manifests.ooyala(manifests.ooyala_item(f"{name}.mov", None, None))
            )
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 2)
        wait_until(
            lambda: sum(p["count"] for p in posts if p["kind"] == "digest") == 2, what="the digest"
        )
    assert all(e["kind"] == "complete" for p in posts for e in p["events"])
