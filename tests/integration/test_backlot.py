"""The Backlot client against a local HTTP server that checks every signature the way the
official SDK computes it and answers in the documented shapes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from hotfolder.after import backlot
from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.service.daemon import Daemon
from tests import manifests
from tests.helpers import running, wait_until, write_config

KEY = "7ab06.pcode"
SECRET = "329b5b204d0f11e0a2d060334bfffe90ab18xqh5"
SOURCE = bytes(range(256)) * 4096  # 1 MiB


def test_the_sdk_test_vector() -> None:
    assert (
        backlot.signature(
            SECRET, "GET", "/v2/players/HbxJK", {"api_key": "7ab06", "expires": "1299991855"}
        )
        == "7nTzPd0x4vKBlkmKnHtymIkJljchevfxxcrWtc0ito4"
    )


def test_expires_is_rounded_up_like_the_sdk() -> None:
    assert backlot.expires(1000) == 1200  # 1000 + 15 -> next multiple of 300
    assert backlot.expires(1285) == 1500


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("my_video.avi", "my_video.avi"),
        ("../../etc/passwd", "passwd"),
        ("a/b\\c.mov", "c.mov"),
        ("..", "source"),
        ("\x00evil\n.mov", "evil.mov"),
    ],
)
def test_server_file_names_are_sanitised(name: str, safe: str) -> None:
    assert backlot.safe_name(name) == safe


class FakeBacklot:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.fail_next: list[int] = []  # statuses to answer before the real answer
        self.drop_download_at: int | None = None
        self.file_size = len(SOURCE)
        self.original_name = "my_video.avi"
        self.assets: dict[str, dict[str, Any]] = {
            "EMB1": {
                "embed_code": "EMB1",
                "name": "Title",
                "status": "live",
                "original_file_name": self.original_name,
                "asset_type": "video",
            }
        }
        self.base = ""

    def check(self, method: str, raw_path: str, body: str) -> bool:
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query))
        given = params.pop("signature", None)
        return (
            given == backlot.signature(SECRET, method, parts.path, params, body)
            and params.get("api_key") == KEY
        )


@pytest.fixture
def server() -> Iterator[FakeBacklot]:
    state = FakeBacklot()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            state.requests.append(("GET", self.path))
            if path == "/download/source.avi":
                return self.download()  # pre-signed: not checked as an API URL
            if state.fail_next:
                return self.reply(state.fail_next.pop(0), {"message": "try later"})
            if not state.check("GET", self.path, ""):
                return self.reply(401, {"message": "Invalid signature"})
            if path.startswith("/v2/assets/") and path.endswith("/streams"):
                return self.reply(
                    200,
                    [
                        {
                            "stream_type": "single",
                            "profile": "baseline",
                            "is_source": "false",
                            "url": f"{state.base}/download/low.mp4",
                        },
                        {
                            "stream_type": "single",
                            "is_source": "true",
                            "video_codec": "h264",
                            "file_size": state.file_size,
                            "url": f"{state.base}/download/source.avi",
                        },
                    ],
                )
            if path.startswith("/v2/assets/"):
                asset = state.assets.get(path.rsplit("/", 1)[1])
                return self.reply(200, asset) if asset else self.reply(404, {"message": "nf"})
            if path == "/v2/assets":
                return self.query()
            return self.reply(404, {})

        def query(self) -> None:
            params = dict(parse_qsl(urlsplit(self.path).query))
            items = [
                a
                for a in state.assets.values()
                if params["where"]
                in (f"metadata.guid='{a.get('guid')}'", f"name='{a['name']}'", "all")
            ]
            page = int(params.get("page_token", "0"))
            chunk = items[page * 2 : page * 2 + 2]
            more = (page + 1) * 2 < len(items)
            body: dict[str, Any] = {"items": chunk}
            if more:
                body["next_page"] = f"/v2/assets?where=all&page_token={page + 1}"
            self.reply(200, body)

        def download(self) -> None:
            start = 0
            if "Range" in self.headers:
                start = int(self.headers["Range"].split("=")[1].split("-")[0])
            data = SOURCE[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            cut = state.drop_download_at
            if cut is not None and start == 0:
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self.connection.shutdown(2)  # the connection drops mid-download
                return
            self.wfile.write(data)

        def reply(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="fake-backlot")
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def client(server: FakeBacklot, secret: str = SECRET) -> backlot.Client:
    return backlot.Client(backlot.Credentials(KEY, secret), server.base, server.base, backoff=0.01)


def test_a_signed_request_is_accepted(server: FakeBacklot) -> None:
    assert client(server).asset("EMB1")["original_file_name"] == "my_video.avi"


def test_a_wrong_secret_says_what_to_check(server: FakeBacklot) -> None:
    with pytest.raises(backlot.BacklotError) as err:
        client(server, secret="x" * 40).asset("EMB1")
    assert err.value.status == 401
    assert "api_secret" in str(err.value)
    assert "clock" in str(err.value)
    assert "x" * 40 not in str(err.value)


def test_an_unknown_asset_is_404(server: FakeBacklot) -> None:
    with pytest.raises(backlot.BacklotError) as err:
        client(server).asset("NOPE")
    assert err.value.status == 404


def test_503_then_success_is_retried(server: FakeBacklot) -> None:
    server.fail_next = [503, 503]
    assert client(server).asset("EMB1")["embed_code"] == "EMB1"
    assert len(server.requests) == 3


def test_query_follows_page_tokens(server: FakeBacklot) -> None:
    for i in range(5):
        server.assets[f"E{i}"] = {"embed_code": f"E{i}", "name": f"n{i}", "status": "live"}
    found = [a["embed_code"] for a in client(server).find("all")]
    assert sorted(found) == sorted(server.assets)


def test_source_download_resumes_after_a_dropped_connection(
    server: FakeBacklot, tmp_path: Path
) -> None:
    server.drop_download_at = 300_000
    path = client(server).download_source("EMB1", tmp_path)
    assert path == tmp_path / "my_video.avi"
    assert path.read_bytes() == SOURCE
    ranges = [p for m, p in server.requests if p == "/download/source.avi"]
    assert len(ranges) == 2, "the second GET must have resumed with a Range"


def test_a_size_mismatch_is_detected_and_the_partial_kept(
    server: FakeBacklot, tmp_path: Path
) -> None:
    server.file_size = len(SOURCE) + 10
    with pytest.raises(backlot.BacklotError) as err:
        client(server).download_source("EMB1", tmp_path)
    assert "Backlot says" in str(err.value)
    assert not (tmp_path / "my_video.avi").exists()


def test_a_hostile_original_name_is_written_inside_the_folder(
    server: FakeBacklot, tmp_path: Path
) -> None:
    server.assets["EMB1"]["original_file_name"] = "../../escape.avi"
    path = client(server).download_source("EMB1", tmp_path / "out")
    assert path == tmp_path / "out" / "escape.avi"
    assert not (tmp_path / "escape.avi").exists()


def backlot_config(tmp: Path, server: FakeBacklot, **verify: Any) -> Path:
    path = write_config(tmp)
    data = yaml.safe_load(path.read_text())
    (tmp / "backlot.secret").write_text(SECRET + "\n")
    data["backlot"] = {
        "main": {
            "api_key": KEY,
            "api_secret_file": str(tmp / "backlot.secret"),
            "api_host": server.base,
            "read_host": server.base,
        }
    }
    data["targets"]["nas"]["verify"] = {"backlot": "main", "poll_interval": 0.05, **verify}
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_asset_and_source(server: FakeBacklot, tmp_path: Path) -> None:
    path = backlot_config(tmp_path, server)
    run = [sys.executable, "-m", "hotfolder", "backlot", "--config", str(path)]
    out = subprocess.run([*run, "asset", "EMB1"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embed_code"] == "EMB1"
    out = subprocess.run(
        [*run, "source", "EMB1", "-o", str(tmp_path / "dl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "dl" / "my_video.avi").read_bytes() == SOURCE
    assert SECRET not in out.stdout + out.stderr


def verify_one(tmp_path: Path, server: FakeBacklot, status: str) -> dict[str, Any]:
    """Deliver one submission whose item Backlot knows with `status`; return its check."""
    server.assets["G1"] = {"embed_code": "G1", "name": "Title", "guid": "g-1", "status": status}
    cfg = config.load(backlot_config(tmp_path, server))
    drop = tmp_path / "drop"
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(
        manifests.ooyala(manifests.ooyala_item("a.mov", None, None, guid="g-1"))
    )
    with running(cfg) as daemon:
        checked = wait_until(
            lambda: next(
                (
                    r.detail["verify"]
                    for r in daemon.journal.rows(frozenset({State.COMPLETE}))
                    if r.detail.get("verify", {}).get("result") not in (None, "pending")
                ),
                None,
            ),
            what="the Backlot check",
        )
    result: dict[str, Any] = checked
    return result


def test_a_completed_submission_is_verified_in_backlot(server: FakeBacklot, tmp_path: Path) -> None:
    assert verify_one(tmp_path, server, "processing") == {
        "result": "verified",
        "assets": {"g-1": "verified"},
    }


def test_an_ingest_error_is_recorded(server: FakeBacklot, tmp_path: Path) -> None:
    assert verify_one(tmp_path, server, "error") == {
        "result": "ingest-error",
        "assets": {"g-1": "ingest-error"},
    }


def test_a_missing_secret_is_a_verify_error_and_the_check_resumes_once_it_is_there(
    server: FakeBacklot, tmp_path: Path
) -> None:
    server.assets["G1"] = {"embed_code": "G1", "name": "T", "guid": "g-1", "status": "live"}
    cfg = config.load(backlot_config(tmp_path, server))
    secret = tmp_path / "backlot.secret"
    secret.unlink()
    (tmp_path / "drop" / "a.mov").write_bytes(b"a")
    (tmp_path / "drop" / "m.xml").write_text(
        manifests.ooyala(manifests.ooyala_item("a.mov", None, None, guid="g-1"))
    )

    def check(daemon: Daemon) -> dict[str, Any] | None:
        rows = daemon.journal.rows(frozenset({State.COMPLETE}))
        return rows[0].detail.get("verify") if rows else None

    with running(cfg) as daemon:
        failed = wait_until(
            lambda: (check(daemon) or {}).get("result") == "verify-error" and check(daemon),
            what="the check to fail on the missing secret",
        )
        assert failed["error"].startswith("cannot read the Backlot secret: ")
        assert str(secret) in failed["error"]
        assert SECRET not in json.dumps(failed)
        secret.write_text(SECRET + "\n")
        done = wait_until(
            lambda: (check(daemon) or {}).get("result") == "verified" and check(daemon),
            what="the check to resume and succeed",
        )
        assert done == {"result": "verified", "assets": {"g-1": "verified"}}
        assert any(t.name == "verify" and t.is_alive() for t in threading.enumerate())
