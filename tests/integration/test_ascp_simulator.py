"""The ascp target end to end against the simulator: real processes, real sockets, real
FASPMGR 2 frames, real bytes, injected faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hotfolder import config
from hotfolder.model import State
from tests import manifests
from tests.helpers import ascp_config, running, sim_sessions, wait_until

VIDEO = 3 * 1024 * 1024


def drop(tmp: Path) -> None:
    d = tmp / "drop"
    (d / "my_video.mov").write_bytes(bytes(range(256)) * (VIDEO // 256))
    (d / "my_thumbnail.jpg").write_bytes(b"\xff\xd8" * 500)
    (d / "caption-1.dfxp").write_text("<tt/>")
    (d / "m.xml").write_text(manifests.ooyala())


def run_until(tmp: Path, state: State, **kw: object) -> list[dict[str, object]]:
    cfg = config.load(ascp_config(tmp, **kw))  # type: ignore[arg-type]
    drop(tmp)
    with running(cfg) as daemon:
        wait_until(
            lambda: daemon.journal.counts().get(state) == 1,
            timeout=30,
            what=f"the submission to be {state}",
        )
        wait_until(
            lambda: all(r.postprocessed for r in daemon.journal.rows(frozenset({State.COMPLETE})))
        )
        rows = daemon.journal.rows()
    return [
        {"state": r.state, "attempts": r.attempts, "error": r.error_message, "code": r.error_code}
        for r in rows
    ]


def test_media_session_then_the_manifest_alone(tmp_path: Path) -> None:
    run_until(tmp_path, State.COMPLETE)
    sessions = sim_sessions(tmp_path)
    assert [s["files"] for s in sessions] == [
        ["my_video.mov", "my_thumbnail.jpg", "caption-1.dfxp"],
        ["m.xml"],
    ]
    assert all(s["result"] == "done" for s in sessions)
    assert sessions[0]["ended"] <= sessions[1]["started"], "the manifest went before media"
    server = tmp_path / "server" / "incoming"
    assert (server / "my_video.mov").read_bytes() == bytes(range(256)) * (VIDEO // 256)
    assert (server / "m.xml").read_text() == manifests.ooyala()
    assert not list(server.glob("*.partial"))
    tags = json.loads(str(sessions[1]["tags"]))
    assert tags["hotfolder"]["session"] == "manifest"
    assert list((tmp_path / "state" / "ascp" / "aspera").glob("*.list")) == [], (
        "file lists must be cleaned up"
    )
    receipts = list(
        (tmp_path / "state" / "ascp" / "aspera" / "receipts").rglob(
            "aspera-transfer-*-manifest.txt"
        )
    )
    assert len(receipts) == 1
    assert "m.xml" in receipts[0].read_text()


def test_a_retryable_error_mid_file_resumes_and_completes(tmp_path: Path) -> None:
    faults = [
        {
            "session": 1,
            "file": "my_video.mov",
            "at_byte": VIDEO // 2,
            "kind": "error",
            "code": 16,
            "description": "Connection lost",
        }
    ]
    (row,) = run_until(tmp_path, State.COMPLETE, faults=faults)
    sessions = sim_sessions(tmp_path)
    assert [s["result"] for s in sessions] == ["error", "done", "done"]
    assert sessions[1]["files"] == sessions[0]["files"]
    assert sessions[1]["resume"] == "2"
    assert row["attempts"] == 1
    video = tmp_path / "server" / "incoming" / "my_video.mov"
    assert video.stat().st_size == VIDEO


def test_authentication_failure_is_not_retried_and_the_manifest_never_goes(tmp_path: Path) -> None:
    secret = "Wr0ng-Pa55word-7f3a"  # a test secret that must never be echoed
    with capture_logs() as logs:
        (row,) = run_until(tmp_path, State.FAILED, password=secret)
    sessions = sim_sessions(tmp_path)
    assert len(sessions) == 1
    assert row["code"] == "fasp-19"
    (failed,) = (tmp_path / "failed").iterdir()
    report = (failed / "REPORT.txt").read_text()
    assert "failed to authenticate" in report
    logged = repr(logs)
    assert "ascp starting" in logged, "the capture must have seen the daemon's lines"
    for text in (report, (failed / "report.json").read_text(), logged):
        assert secret not in text, "the password leaked"
    assert "ASPERA_SCP_PASS" not in logged
    assert not (tmp_path / "server" / "incoming" / "m.xml").exists()
    assert (failed / "my_video.mov").exists(), "sources are quarantined, not lost"


@pytest.mark.parametrize("kind", ["exit_before_connect", "exit_after_init", "kill"])
def test_a_dead_ascp_is_classified_and_retried(tmp_path: Path, kind: str) -> None:
    faults = [{"session": 1, "kind": kind, "file": "my_video.mov", "at_byte": 1024}]
    (row,) = run_until(tmp_path, State.COMPLETE, faults=faults)
    assert row["attempts"] == 1
    assert len(sim_sessions(tmp_path)) >= 2


def test_a_stalled_session_is_cancelled_and_retried(tmp_path: Path) -> None:
    faults = [{"session": 1, "kind": "stall", "file": "my_video.mov", "at_byte": VIDEO // 3}]
    (row,) = run_until(tmp_path, State.COMPLETE, faults=faults, stall_timeout=0.5)
    assert row["attempts"] == 1
    assert "stalled" in str(row["error"])
    sessions = sim_sessions(tmp_path)
    assert sessions[0]["result"] in ("stalled", "error")


def test_a_manifest_session_failure_after_media_keeps_a_clear_report(tmp_path: Path) -> None:
    faults = [
        {
            "session": 2,
            "kind": "error",
            "file": "m.xml",
            "code": 41,
            "description": "Server aborted session: path outside docroot",
        }
    ]
    (row,) = run_until(tmp_path, State.FAILED, faults=faults)
    assert row["code"] == "fasp-41"
    assert len(sim_sessions(tmp_path)) == 2
