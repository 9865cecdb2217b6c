"""Faults only an admin can fix hold the drop where it is and resume by themselves once
fixed (issue 16, items 8 and 16); media edited while they are sent never get a manifest
(item 6). Real daemon, real files, the ascp simulator, a real read-only mount."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.state.journal import Row
from tests import manifests
from tests.helpers import ascp_config, running, sim_sessions, wait_until, write_config

VIDEO = 3 * 1024 * 1024


def drop(tmp: Path) -> None:
    d = tmp / "drop"
    (d / "my_video.mov").write_bytes(bytes(range(256)) * (VIDEO // 256))
    (d / "my_thumbnail.jpg").write_bytes(b"\xff\xd8" * 500)
    (d / "caption-1.dfxp").write_text("<tt/>")
    (d / "m.xml").write_text(manifests.ooyala())


def held(rows: list[Row]) -> Row | None:
    return next((r for r in rows if r.state is State.HELD), None)


def test_a_missing_password_file_holds_the_drop_and_it_goes_once_the_file_is_back(
    tmp_path: Path,
) -> None:
    cfg = config.load(ascp_config(tmp_path))
    password = tmp_path / "secrets" / "aspera.pass"
    password.unlink()  # the admin's mistake, not the editor's
    drop(tmp_path)
    with running(cfg) as daemon:
        row = wait_until(lambda: held(daemon.journal.rows()), timeout=30, what="a hold")
        assert row.error_code == "admin:no-credential"
        assert "Only an admin can fix this" in str(row.error_message)
        assert (tmp_path / "drop" / "my_video.mov").exists(), "the drop stays in place"
        assert not (tmp_path / "failed").exists(), "nothing quarantined"
        assert sim_sessions(tmp_path) == [], "nothing was sent"
        password.write_text("pw\n")  # fixed: no operator action needed
        wait_until(lambda: daemon.journal.state_of(row.id) is State.COMPLETE, timeout=30)
    assert (tmp_path / "server" / "incoming" / "m.xml").read_text() == manifests.ooyala()


def test_ascp_missing_holds_for_the_admin_instead_of_crashing_the_delivery(
    tmp_path: Path,
) -> None:
    cfg = config.load(ascp_config(tmp_path, ascp_path=str(tmp_path / "not-installed" / "ascp")))
    drop(tmp_path)
    with running(cfg) as daemon:
        row = wait_until(lambda: held(daemon.journal.rows()), timeout=30, what="a hold")
        assert row.error_code == "admin:no-ascp"
        assert "ascp_path" in str(row.error_message)
        assert row.detail["hold"]["resume"] == "ready"
    assert (tmp_path / "drop" / "m.xml").exists()


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` as a read-only bind mount of itself (EROFS, not a permission bit: root
    ignores those), in tests/run's private mount namespace."""
    if os.environ.get("HOTFOLDER_IN_NS") != "1" or os.geteuid() != 0:
        pytest.fail("needs root in tests/run's private mount namespace")
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_read_only_local_target_is_an_admin_hold_that_resumes_when_writable(
    tmp_path: Path,
) -> None:
    cfg = config.load(write_config(tmp_path))
    ingest = tmp_path / "ingest"
    (tmp_path / "drop" / "a.mov").write_bytes(b"a" * 1000)
    with running(cfg) as daemon:
        with read_only(ingest):
            (tmp_path / "drop" / "m.xml").write_text(
                manifests.ooyala(manifests.ooyala_item("a.mov", None, None))
            )
            row = wait_until(lambda: held(daemon.journal.rows()), timeout=30, what="a hold")
            assert row.error_code == "admin:EROFS"
            assert "read-only" in str(row.error_message)
            assert (tmp_path / "drop" / "a.mov").exists()
        wait_until(lambda: daemon.journal.state_of(row.id) is State.COMPLETE, timeout=30)
    assert (ingest / "a.mov").read_bytes() == b"a" * 1000


def test_a_video_edited_while_it_is_sent_fails_and_its_manifest_never_goes(
    tmp_path: Path,
) -> None:
    cfg = config.load(ascp_config(tmp_path, rate=1e6))  # 3 s for the video
    drop(tmp_path)
    video = tmp_path / "drop" / "my_video.mov"
    partial = tmp_path / "server" / "incoming" / "my_video.mov.partial"
    with running(cfg) as daemon:
        wait_until(partial.exists, timeout=30, what="the video to be on its way")
        st = video.stat()
        with open(video, "r+b") as f:
            f.write(b"EDITED IN PLACE")  # same size, same inode
        os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        row = wait_until(
            lambda: next(iter(daemon.journal.rows(frozenset({State.FAILED}))), None), timeout=30
        )
    assert row.error_code == "source-changed-in-flight"
    assert "'my_video.mov' changed while it was being sent" in str(row.error_message)
    assert not (tmp_path / "server" / "incoming" / "m.xml").exists(), "the manifest went"
    assert [s["files"] for s in sim_sessions(tmp_path)] == [
        ["my_video.mov", "my_thumbnail.jpg", "caption-1.dfxp"]
    ]
