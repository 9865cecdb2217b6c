"""failed/ and archive/ shared with the editors' group whatever the umask (issue 16 item 18)."""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.after import postprocess
from hotfolder.model import Problem
from hotfolder.perms import SharedPermissions, share_tree


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o027)  # the unit's UMask=0027
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_quarantined_tree_is_shared_with_the_group(tmp_path: Path, strict_umask: None) -> None:
    other = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())  # root may chown
    failed = tmp_path / "failed"
    sub = failed / "ep1-abc"
    (sub / "captions").mkdir(parents=True)
    (sub / "REPORT.txt").write_text("r")
    (sub / "captions" / "en.dfxp").write_text("c")
    outside = tmp_path / "outside.txt"  # never a host file: a broken build would chmod it
    outside.write_text("o")
    (sub / "outside").symlink_to(outside)
    assert mode(sub) == 0o750  # what the umask alone gives
    settings = SharedPermissions(folder_mode=0o2770, file_mode=0o660, group=other.gr_name)
    share_tree(failed, sub, settings)
    for folder in (failed, sub, sub / "captions"):
        assert mode(folder) == 0o2770, folder
        assert folder.stat().st_gid == other.gr_gid
    for file in (sub / "REPORT.txt", sub / "captions" / "en.dfxp"):
        assert mode(file) == 0o660, file
        assert file.stat().st_gid == other.gr_gid
    assert mode(outside) == 0o640  # a symlink is never followed
    assert mode(tmp_path) != 0o2770  # nothing above failed_dir


def test_an_archive_date_folder_is_shared_too(tmp_path: Path, strict_umask: None) -> None:
    top = tmp_path / "archive" / "2026-11-23" / "ep1"
    top.mkdir(parents=True)
    (top / "v.mp4").write_bytes(b"v")
    share_tree(tmp_path / "archive", top, SharedPermissions(0o2775, 0o664))
    assert mode(tmp_path / "archive" / "2026-11-23") == 0o2775
    assert mode(top / "v.mp4") == 0o664


def test_without_settings_the_umask_decides(tmp_path: Path, strict_umask: None) -> None:
    top = tmp_path / "failed" / "x"
    top.mkdir(parents=True)
    share_tree(tmp_path / "failed", top, None)
    assert mode(top) == 0o750


def test_quarantine_applies_the_watch_permissions(tmp_path: Path, strict_umask: None) -> None:
    drop, failed = tmp_path / "drop", tmp_path / "failed"
    drop.mkdir()
    (drop / "m.xml").write_text("<rss/>")
    folder = postprocess.quarantine(
        "ep1-abc",
        "w",
        drop,
        PurePosixPath("m.xml"),
        (),
        (Problem("malformed-manifest", "bad"),),
        failed,
        datetime(2026, 11, 23, tzinfo=UTC),
        permissions=SharedPermissions(0o2770, 0o660),
    )
    assert mode(failed) == mode(folder) == 0o2770
    assert {p.name: mode(p) for p in folder.iterdir()} == {
        "m.xml": 0o660,
        "REPORT.txt": 0o660,
        "report.json": 0o660,
    }
