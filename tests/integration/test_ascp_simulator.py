"""The ascp target end to end against the simulator: real processes, real sockets, real
FASPMGR 2 frames, real bytes, injected faults."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
import yaml
from structlog.testing import capture_logs

from hotfolder.cli import ops
from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.transfer.process import Child
from hotfolder.transfer.targets import Fault, Session, TransferError
from hotfolder.transfer.targets import ascp as ascp_target
from hotfolder.transfer.targets import build as build_target
from hotfolder.transfer.targets.ascp_run import AscpRun
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


def test_authentication_failure_is_held_for_the_admin_and_released_by_retry(
    tmp_path: Path,
) -> None:
    """A wrong password is the admin's fault, not the editor's: held with the server's words,
    never retried blindly, the drop left in place; fixed and released, it goes."""
    secret = "Wr0ng-Pa55word-7f3a"  # a test secret that must never be echoed
    cfg = config.load(ascp_config(tmp_path, password=secret))
    drop(tmp_path)
    with capture_logs() as logs, running(cfg) as daemon:
        row = wait_until(
            lambda: next(iter(daemon.journal.rows(frozenset({State.HELD}))), None),
            timeout=30,
            what="the submission to be held",
        )
        assert row.error_code == "admin:fasp-19"
        assert "failed to authenticate" in str(row.error_message)
        assert len(sim_sessions(tmp_path)) == 1, "an auth failure is not retried"
        assert (tmp_path / "drop" / "my_video.mov").exists(), "the drop stays where it is"
        assert not (tmp_path / "failed").exists() or not any((tmp_path / "failed").iterdir())
        (tmp_path / "secrets" / "aspera.pass").write_text("pw\n")  # the admin fixes it
        ops.retry(daemon.journal, daemon.config, row.id, datetime.now(UTC))
        wait_until(lambda: daemon.journal.state_of(row.id) is State.COMPLETE, timeout=30)
        stored = repr(daemon.journal.history(row.id)) + repr(daemon.journal.get(row.id))
    logged = repr(logs)
    assert "ascp starting" in logged, "the capture must have seen the daemon's lines"
    for text in (logged, stored):
        assert secret not in text, "the password leaked"
    assert "ASPERA_SCP_PASS" not in logged
    assert (tmp_path / "server" / "incoming" / "m.xml").read_text() == manifests.ooyala()


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


def test_a_manifest_session_that_fails_after_it_may_have_left_is_held_not_retried(
    tmp_path: Path,
) -> None:
    """The manifest's session errs once the manifest could be read: its outcome is unknown,
    so it is decided by evidence (none here) and held, never sent again blindly."""
    faults = [
        {
            "session": 2,
            "kind": "error",
            "file": "m.xml",
            "code": 41,
            "description": "Server aborted session: path outside docroot",
        }
    ]
    (row,) = run_until(tmp_path, State.HELD, faults=faults)
    assert row["code"] == "manifest-unconfirmed"
    assert "path outside docroot" in str(row["error"])
    assert len(sim_sessions(tmp_path)) == 2, "the manifest session must not be retried"


@pytest.mark.parametrize("kind", ["kill", "stall"])
def test_a_manifest_session_cut_off_mid_file_is_held_not_sent_twice(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASCP_SIM_RECORD_STARTS", "1")
    faults = [{"session": 2, "kind": kind, "file": "m.xml", "at_byte": 0}]
    (row,) = run_until(tmp_path, State.HELD, faults=faults, stall_timeout=0.5)
    assert row["code"] == "manifest-unconfirmed"
    starts = [json.loads(x) for x in (tmp_path / "sim" / "starts.jsonl").read_text().splitlines()]
    assert [s["files"] for s in starts].count(["m.xml"]) == 1, "sent twice"


def test_a_pause_right_after_spawning_the_manifest_session_sends_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 item 3: the daemon stopped (SIGSTOP) right after it spawned the manifest's
    ascp, which connects, finishes and exits before the daemon looks. Made deterministic: the
    first manifest session's accept waits until ascp has exited."""
    monkeypatch.setenv("ASCP_SIM_RECORD_STARTS", "1")
    original = AscpRun._accept
    paused: list[int] = []

    def accept_after_a_pause(
        self: AscpRun, listener: socket.socket, child: Child
    ) -> socket.socket | None:
        if self.session.label == "manifest" and not paused:
            paused.append(child.pid)
            child.wait(30)  # the daemon "wakes up" only once ascp is gone
        return original(self, listener, child)

    monkeypatch.setattr(AscpRun, "_accept", accept_after_a_pause)
    (row,) = run_until(tmp_path, State.COMPLETE)
    assert paused, "the pause must have happened"
    starts = [json.loads(x) for x in (tmp_path / "sim" / "starts.jsonl").read_text().splitlines()]
    manifest_starts = [s for s in starts if s["files"] == ["m.xml"]]
    assert manifest_starts, starts
    for start in manifest_starts:
        assert not start["server_complete"].get("m.xml"), "a session re-sent the manifest"
    landed = (tmp_path / "sim" / "landed.jsonl").read_text().splitlines()
    assert [json.loads(x)["name"] for x in landed].count("m.xml") == 1
    assert row["state"] is State.COMPLETE


def test_a_manifest_session_that_never_reached_the_manifest_leaves_no_attempt(
    tmp_path: Path,
) -> None:
    """Item 17: the attempt marker is written only once ascp runs and just before it can
    read the manifest; an ascp that died before that proves the manifest never left."""
    target = ascp_target.AscpTarget(
        ascp_target.AscpSettings.from_options(
            "aspera",
            yaml.safe_load(
                ascp_config(tmp_path, faults=[{"kind": "exit_before_connect"}]).read_text()
            )["targets"]["aspera"],
            tmp_path / "work",
        )
    )
    (tmp_path / "m.xml").write_text(manifests.ooyala())
    session = Session("sub-1", "manifest", ((tmp_path / "m.xml", PurePosixPath("m.xml")),))
    with pytest.raises(TransferError) as err:
        target.send(session, lambda _: None, threading.Event())
    assert not err.value.may_have_arrived
    assert err.value.fault is Fault.TRANSIENT
    assert target.delivered(session) is False


def test_a_manifest_session_that_looked_before_the_gate_opened_takes_its_marker_back(
    tmp_path: Path,
) -> None:
    # ascp looked for the staged manifest before the daemon read its INIT: it sent nothing,
    # so the attempt marker goes, and a crash before the next try is not held for nothing.
    cfg = config.load(ascp_config(tmp_path, faults=[{"session": 1, "kind": "look_early"}]))
    target = build_target(cfg.targets["aspera"], cfg.state_dir)
    assert isinstance(target, ascp_target.AscpTarget)
    source = tmp_path / "drop" / "m.xml"
    source.write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    session = Session("m-1", "manifest", ((source, PurePosixPath("m.xml")),))
    with pytest.raises(TransferError) as raised:
        target.send(session, lambda _done: None, threading.Event())
    assert raised.value.code == "fasp-4"
    assert not raised.value.may_have_arrived
    assert [s["result"] for s in sim_sessions(tmp_path)] == ["error"]
    assert not target.attempt_marker(session).exists()
    assert target.delivered(session) is False  # a restart now sends it, without a hold
