"""Issue 16's promises against hostile drops: links in every path component, a manifest that is
a link, and the same bytes dropped again. Real files, the real observer, the local target."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.service.daemon import Daemon
from hotfolder.service.sd_notify import Notifier
from hotfolder.state.journal import Journal
from tests import manifests
from tests.helpers import FAST_RETRY, running, wait_until, write_config

SECRET = "hunter2-aspera-password"


def rows_in(daemon: Daemon, state: State) -> list[str]:
    return [r.id for r in daemon.journal.rows(frozenset({state}))]


def failed_texts(tmp: Path) -> str:
    """Everything an editor can read about failures: every report in failed/."""
    return "".join(
        p.read_text(errors="replace") for p in (tmp / "failed").rglob("*") if p.is_file()
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the drop folder holding a file nobody may send, move or read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.mp4").write_bytes(b"master tape")
    (folder / "aspera.pass").write_text(SECRET + "\n")
    return folder


@pytest.mark.parametrize("after_success", ["archive", "delete"])
def test_a_symlinked_folder_cannot_send_move_or_delete_a_file_outside(
    tmp_path: Path, outside: Path, after_success: str
) -> None:
    cfg = config.load(write_config(tmp_path, after_success=after_success))
    drop = tmp_path / "drop"
    (drop / "ep1").mkdir()
    (drop / "ep1" / "lnk").symlink_to(outside)
    (drop / "x").mkdir()
    (drop / "x" / "root").symlink_to("/")
    via_root = "root" + str(outside / "secret.mp4")
    with running(cfg) as daemon:
        (drop / "ep1" / "m.xml").write_text(
            manifests.ooyala(manifests.ooyala_item("lnk/secret.mp4", None, None))
        )
        (drop / "x" / "m.xml").write_text(
            manifests.ooyala(manifests.ooyala_item(via_root, None, None))
        )
        wait_until(lambda: len(rows_in(daemon, State.FAILED)) == 2, what="both refused")
    assert (outside / "secret.mp4").read_bytes() == b"master tape", "moved or deleted"
    assert not any((tmp_path / "ingest").rglob("secret.mp4")), "sent"
    assert not any((tmp_path / "failed").rglob("secret.mp4")), "moved where editors read"
    assert not any((tmp_path / "archive").rglob("secret.mp4")) if after_success else True
    assert "link" in failed_texts(tmp_path)


def test_a_submission_rejected_for_another_reason_leaves_the_outside_file(
    tmp_path: Path, outside: Path
) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    (drop / "ep1").mkdir()
    (drop / "ep1" / "lnk").symlink_to(outside)
    (drop / "ep1" / "c.dfxp").write_text("<tt/>")
    item = manifests.ooyala_item("lnk/secret.mp4", None, "c.dfxp", lang="xx")  # bad language
    with running(cfg) as daemon:
        (drop / "ep1" / "m.xml").write_text(manifests.ooyala(item))
        wait_until(lambda: rows_in(daemon, State.FAILED), what="refused")
    assert (outside / "secret.mp4").exists()
    assert not any((tmp_path / "failed").rglob("secret.mp4"))
    report = json.loads(next((tmp_path / "failed").rglob("report.json")).read_text())
    codes = {p["code"] for p in report["problems"]}
    assert {"bad-caption-language", "path-escapes"} <= codes, "every problem at once"


def test_a_second_path_through_a_parent_link_is_refused(tmp_path: Path) -> None:
    """`ln -s .. drop/y/up` would give a second name to another submission's file."""
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    (drop / "y").mkdir()
    (drop / "y" / "up").symlink_to("..")
    (drop / "v.mov").write_bytes(b"v")
    with running(cfg) as daemon:
        (drop / "y" / "m.xml").write_text(
            manifests.ooyala(manifests.ooyala_item("up/v.mov", None, None))
        )
        wait_until(lambda: rows_in(daemon, State.FAILED), what="refused")
    assert (drop / "v.mov").exists()
    assert not (tmp_path / "ingest" / "up").exists()


def test_a_manifest_that_is_a_link_is_never_read_quoted_or_sent(
    tmp_path: Path, outside: Path
) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    good = outside / "real.xml"
    (outside / "v.mov").write_bytes(b"v")
    good.write_text(manifests.ooyala(manifests.ooyala_item("v.mov", None, None)))
    with running(cfg) as daemon:
        (drop / "pw.csv").symlink_to(outside / "aspera.pass")
        (drop / "m.xml").symlink_to(good)
        wait_until(lambda: len(rows_in(daemon, State.FAILED)) == 2, what="both refused")
        rows = daemon.journal.rows()
        journal_text = repr(rows) + repr([daemon.journal.history(r.id) for r in rows])
    assert SECRET not in failed_texts(tmp_path)
    assert SECRET not in journal_text
    assert not any((tmp_path / "ingest").iterdir()), "a linked manifest was delivered"
    assert (outside / "aspera.pass").read_text() == SECRET + "\n"
    assert "link" in failed_texts(tmp_path)


def keep_inodes(src: Path, keep: Path) -> None:
    """Hard-link every file elsewhere, so that putting them back later gives the same inode,
    size and mtime: exactly what ext4's inode reuse plus `cp -p` does to a re-drop."""
    keep.mkdir(exist_ok=True)
    for f in src.iterdir():
        os.link(f, keep / f.name)


def test_the_same_bytes_dropped_again_after_delivery_are_sent_again(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, after_success="delete"))
    drop, keep = tmp_path / "drop", tmp_path / "keep"
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "v.mov").write_bytes(b"v" * 1000)
    (stage / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("v.mov", None, None)))
    keep_inodes(stage, keep)
    with running(cfg) as daemon:
        for name in ("v.mov", "m.xml"):  # the manifest last, as editors are told
            os.link(keep / name, drop / name)
        wait_until(lambda: rows_in(daemon, State.COMPLETE), what="first delivery")
        wait_until(lambda: not any(drop.iterdir()), what="deleted after success")
        first = rows_in(daemon, State.COMPLETE)
        for name in ("v.mov", "m.xml"):
            os.link(keep / name, drop / name)
        wait_until(lambda: len(rows_in(daemon, State.COMPLETE)) == 2, what="second delivery")
        second = rows_in(daemon, State.COMPLETE)
        wait_until(lambda: not any(drop.iterdir()), what="deleted again")
    assert len(set(second) - set(first)) == 1
    assert (tmp_path / "ingest" / "m.xml").exists()


def test_a_kept_submission_is_not_sent_again_when_the_journal_is_lost(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, after_success="keep"))
    drop = tmp_path / "drop"
    (drop / "v.mov").write_bytes(b"v" * 100)
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("v.mov", None, None)))
    Daemon(cfg, retry=FAST_RETRY).run(once=True)
    sent = tmp_path / "ingest" / "m.xml"
    assert sent.exists()
    sent.unlink()
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (tmp_path / "state" / name).unlink(missing_ok=True)
    Daemon(cfg, retry=FAST_RETRY).run(once=True)
    assert not sent.exists(), "a kept submission was sent twice after the journal was lost"
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    try:
        assert journal.rows() == []
    finally:
        journal.close()


def test_a_journal_moved_away_while_running_pauses_new_work_until_it_is_back(
    tmp_path: Path,
) -> None:
    cfg = config.load(write_config(tmp_path))
    drop, journal = tmp_path / "drop", tmp_path / "state" / "journal.sqlite"
    sent: list[str] = []  # sd_notify messages: a watchdog feed per turn of the main loop
    notifier = Notifier(sent.append, {"NOTIFY_SOCKET": "@test", "WATCHDOG_USEC": "1"})

    def turns() -> int:
        return sum(1 for m in sent if m == "WATCHDOG=1")

    with running(cfg, notifier=notifier) as daemon:
        journal.rename(journal.with_name("moved.sqlite"))
        wait_until(lambda: daemon.journal_lost == "missing", what="the loss noticed")
        (drop / "v.mov").write_bytes(b"v")
        (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("v.mov", None, None)))
        after_drop = turns()
        # Unpaused, 0.5 s of stability would have delivered it within two turns.
        wait_until(lambda: turns() >= after_drop + 4, what="four turns of the main loop")
        assert daemon.journal.rows() == [], "decided while the journal was gone"
        assert any(m.startswith("STATUS=PAUSED: journal missing") for m in sent)
        journal.with_name("moved.sqlite").rename(journal)
        wait_until(lambda: daemon.journal_lost is None, what="the journal back")
        wait_until(lambda: rows_in(daemon, State.COMPLETE), what="delivered once it is back")
    reopened = Journal(journal)
    try:
        assert [r.state for r in reopened.rows()] == [State.COMPLETE]
    finally:
        reopened.close()
