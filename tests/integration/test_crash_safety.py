"""Crash safety: kill -9 at random moments and at chosen state changes, and pauses right
after a manifest session is spawned; restart, settle; no manifest before its media, none
twice, nothing lost (the short form of bench/torture)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.torture import torture

from hotfolder.cli import ops
from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.state.journal import Journal
from tests import manifests
from tests.helpers import running, wait_until, write_config


def test_kill_9_torture_short(tmp_path: Path) -> None:
    result = torture(tmp_path, submissions=4, kills=12, seed=7, settle_timeout=120)
    assert (result.lost, result.duplicated, result.out_of_order) == (0, 0, 0), result.notes
    assert result.kills >= 8, "the daemon must really have been killed"
    assert result.pauses >= 1, "the daemon must really have been paused after a spawn"
    assert result.complete + result.held >= 4


def delivered_then_rewound(tmp_path: Path, unarchive: bool = False) -> str:
    """Deliver one submission (sources kept), then put its journal row back to the crash
    point: sending-manifest committed. The caller decides what evidence is left."""
    cfg = config.load(write_config(tmp_path, after_success="keep"))
    drop = tmp_path / "drop"
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    with running(cfg) as daemon:
        sid: str = wait_until(
            lambda: next((r.id for r in daemon.journal.rows() if r.state is State.COMPLETE), None)
        )
    (tmp_path / "ingest" / "m.xml").unlink()
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    journal._db.execute(
        "UPDATE submissions SET state = 'sending-manifest', "
        "postprocessed = postprocessed AND NOT ? WHERE id = ?",
        (unarchive, sid),
    )
    journal.close()
    return sid


def test_restart_in_sending_manifest_without_any_attempt_sends_the_manifest(tmp_path: Path) -> None:
    """The daemon died after committing sending-manifest but before any byte left."""
    sid = delivered_then_rewound(tmp_path, unarchive=True)
    for marker in (tmp_path / "state" / "receipts" / "nas").glob(f"{sid}.manifest.*"):
        marker.unlink()  # no receipt, no attempt: nothing ever left
    with running(config.load(tmp_path / "hotfolder.yaml")) as daemon:
        wait_until(lambda: daemon.journal.state_of(sid) is State.COMPLETE)
    assert (tmp_path / "ingest" / "m.xml").exists()


def test_restart_in_sending_manifest_after_an_unproven_attempt_holds_it(tmp_path: Path) -> None:
    sid = delivered_then_rewound(tmp_path)
    # The attempt marker stays; the receipt and the delivered file are gone (a consumer
    # took the file): delivery can be neither proven nor ruled out.
    (tmp_path / "state" / "receipts" / "nas" / f"{sid}.manifest.done").unlink()
    with running(config.load(tmp_path / "hotfolder.yaml")) as daemon:
        wait_until(lambda: daemon.journal.state_of(sid) is State.HELD)
        row = daemon.journal.get(sid)
        assert row is not None
        assert row.error_code == "manifest-unconfirmed"
        assert "duplicate" in str(row.error_message)
        assert not (tmp_path / "ingest" / "m.xml").exists(), "must not be sent blindly"
        # an operator looked, and releases it
        message = ops.retry(daemon.journal, daemon.config, sid, datetime.now(UTC))
        assert "released" in message
        wait_until(lambda: daemon.journal.state_of(sid) is State.COMPLETE)
    assert (tmp_path / "ingest" / "m.xml").exists()


def test_retry_puts_a_failed_submission_back_and_it_goes(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    ingest = tmp_path / "ingest"
    (ingest / "a.mov").mkdir()  # the destination refuses: the submission fails
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    with running(cfg) as daemon:
        sid = wait_until(
            lambda: next((r.id for r in daemon.journal.rows() if r.state is State.FAILED), None)
        )
        wait_until((tmp_path / "failed" / sid / "REPORT.txt").exists, what="the report")
        (ingest / "a.mov").rmdir()  # fixed
        message = ops.retry(daemon.journal, daemon.config, sid, datetime.now(UTC))
        assert "moved back" in message
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    assert (ingest / "a.mov").read_bytes() == b"a"
    assert not (tmp_path / "failed" / sid).exists()


def test_hold_keeps_a_pending_submission_and_forget_removes_it(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("late.mov", None, None)))
    with running(cfg) as daemon:
        sid = wait_until(
            lambda: next((r.id for r in daemon.journal.rows() if r.state is State.PENDING), None)
        )
        assert "held" in ops.hold(daemon.journal, sid, datetime.now(UTC))
        (drop / "late.mov").write_bytes(b"x")
        wait_until(lambda: daemon.watch("w").waiting == 0)
        assert daemon.journal.state_of(sid) is State.HELD
        assert not (tmp_path / "ingest" / "late.mov").exists()
        assert "forgotten" in ops.forget(daemon.journal, sid)
        assert daemon.journal.get(sid) is None
