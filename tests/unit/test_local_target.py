"""The local target's evidence: the attempt marker only once a byte is about to be written,
and a failure before the rename proves nothing arrived (issue 16, items 16 and 17)."""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.transfer.targets import Fault, Session, TransferError
from hotfolder.transfer.targets.local import LocalTarget


def target(tmp_path: Path) -> LocalTarget:
    (tmp_path / "ingest").mkdir()
    return LocalTarget("nas", tmp_path / "ingest", tmp_path / "receipts")


def manifest(tmp_path: Path) -> Session:
    return Session("s1", "manifest", ((tmp_path / "m.xml", PurePosixPath("m.xml")),))


def test_a_manifest_that_never_started_leaves_no_attempt_marker(tmp_path: Path) -> None:
    nas, session = target(tmp_path), manifest(tmp_path)  # m.xml does not exist
    with pytest.raises(TransferError) as err:
        nas.send(session, lambda _: None, threading.Event())
    assert not err.value.may_have_arrived
    assert nas.delivered(session) is False, "nothing left: a restart may send it"


def test_a_delivered_manifest_is_proven_by_its_receipt(tmp_path: Path) -> None:
    nas, session = target(tmp_path), manifest(tmp_path)
    (tmp_path / "m.xml").write_text("<rss/>")
    nas.send(session, lambda _: None, threading.Event())
    assert nas.delivered(session) is True
    assert (tmp_path / "ingest" / "m.xml").read_text() == "<rss/>"


def test_a_missing_destination_root_is_an_admin_fault_and_is_not_recreated(
    tmp_path: Path,
) -> None:
    nas = LocalTarget("nas", tmp_path / "mnt" / "ingest", tmp_path / "receipts")
    problem = nas.check()
    assert problem is not None
    assert problem.fault is Fault.ADMIN
    (tmp_path / "m.xml").write_text("<rss/>")
    with pytest.raises(TransferError) as err:
        nas.send(manifest(tmp_path), lambda _: None, threading.Event())
    assert err.value.code == "target-missing"
    assert not (tmp_path / "mnt").exists(), "an unmounted share must not be recreated"


def test_a_media_session_costs_no_evidence_files(tmp_path: Path) -> None:
    """Only the manifest's session is ever asked for evidence: media are simply sent again,
    so their session writes (and fsyncs) no attempt marker and no receipt."""
    nas = target(tmp_path)
    (tmp_path / "v.mov").write_bytes(b"v")
    media = Session("s1", "media", ((tmp_path / "v.mov", PurePosixPath("v.mov")),))
    nas.send(media, lambda _: None, threading.Event())
    assert (tmp_path / "ingest" / "v.mov").read_bytes() == b"v"
    assert not (tmp_path / "receipts").exists() or not any((tmp_path / "receipts").iterdir())
