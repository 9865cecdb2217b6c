"""Watching as users of hot folders need it: polling, the inotify limit, a share that goes
away and comes back, copiers that rename or rewrite, many files at once."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from hotfolder import config
from hotfolder.model import FileIdentity, State
from hotfolder.tracker import LocalFileSystem
from hotfolder.watch import Watcher
from tests import manifests
from tests.helpers import running, wait_until, write_config


def drop_one(folder: Path, video: str = "a.mov", manifest: str = "m.xml") -> None:
    (folder / video).write_bytes(b"v" * 1000)
    (folder / manifest).write_text(manifests.ooyala(manifests.ooyala_item(video, None, None)))


def test_poll_mode_delivers_with_inotify_off(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, mode="poll", poll_interval=0.2, rescan_seconds=3600))
    with running(cfg) as daemon:
        assert daemon._watches["w"].mode == "poll"
        assert daemon._watcher is not None
        assert not daemon._watcher._watches, "poll mode must not hold an inotify watch"
        drop_one(tmp_path / "drop")  # dropped after start: only the poller can see it
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    assert (tmp_path / "ingest" / "m.xml").exists()


def test_the_inotify_limit_falls_back_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kw: object) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Watcher, "add", refuse)
    cfg = config.load(
        write_config(tmp_path, mode="inotify", poll_interval=0.2, rescan_seconds=3600)
    )
    with capture_logs() as logs, running(cfg) as daemon:
        assert daemon._watches["w"].mode == "poll"
        drop_one(tmp_path / "drop")
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    (warning,) = [e for e in logs if e["event"].startswith("inotify refused")]
    assert "fs.inotify.max_user_watches" in warning["hint"]


def test_a_share_that_disappears_loses_nothing_and_resumes(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, rescan_seconds=3600))
    drop, away = tmp_path / "drop", tmp_path / "unmounted"
    with capture_logs() as logs, running(cfg) as daemon:
        (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("late.mov", None, None)))
        sid = wait_until(
            lambda: next((r.id for r in daemon.journal.rows() if r.state is State.PENDING), None)
        )
        drop.rename(away)  # the share goes away
        wait_until(lambda: not daemon._watches["w"].available, what="the outage noticed")
        assert daemon.journal.state_of(sid) is State.PENDING, "nothing treated as deleted"
        (away / "late.mov").write_bytes(b"x")
        away.rename(drop)  # and comes back, with the missing file
        wait_until(lambda: daemon.journal.state_of(sid) is State.COMPLETE, timeout=20)
    outages = [e for e in logs if e["event"].startswith("watch folder unavailable")]
    assert len(outages) == 1, "an outage is reported once, not at every probe"


def test_copy_then_rename_is_sent_under_the_final_name_only(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        (drop / "a.mov.tmp").write_bytes(b"v" * 5000)  # copier's temporary name
        (drop / "m.xml.tmp").write_text(
            manifests.ooyala(manifests.ooyala_item("a.mov", None, None))
        )
        os.rename(drop / "a.mov.tmp", drop / "a.mov")
        os.rename(drop / "m.xml.tmp", drop / "m.xml")
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    assert sorted(p.name for p in (tmp_path / "ingest").iterdir()) == ["a.mov", "m.xml"]


def test_a_file_rewritten_after_a_truncate_is_sent_in_its_final_form(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, stability_seconds=0.6))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        drop_one(drop)
        time.sleep(0.3)  # the scenario: an editor re-exports over the file mid-window
        with open(drop / "a.mov", "r+b") as f:
            f.truncate(0)
            f.write(b"final" * 100)
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    assert (tmp_path / "ingest" / "a.mov").read_bytes() == b"final" * 100


def test_ten_thousand_files_at_once(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        for i in range(100):
            folder = drop / f"d{i:03}"
            folder.mkdir()
            for j in range(100):
                (folder / f"f{j:03}.bin").write_bytes(b"x")
        drop_one(drop / "d050")
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1, timeout=60)
        # The 10,000 events are forgotten once they can no longer matter: memory stays flat.
        wait_until(
            lambda: len(daemon._watches["w"].tracker.stability._seen) < 10,
            what="the event bookkeeping to be pruned",
        )


class HungShare(LocalFileSystem):
    """A file system whose stat and read hang under one folder, like a dead NFS mount."""

    def __init__(self, hung: Path) -> None:
        self.hung = hung
        self.release = threading.Event()
        self.blocked = threading.Event()

    def _maybe_hang(self, path: Path) -> None:
        if self.hung in path.parents:
            self.blocked.set()
            self.release.wait(30)

    def identity(self, path: Path) -> FileIdentity | None:
        self._maybe_hang(path)
        return super().identity(path)

    def read(self, path: Path, limit: int) -> bytes:
        self._maybe_hang(path)
        return super().read(path, limit)


def test_a_hung_share_does_not_delay_another_watch(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    (tmp_path / "nfs").mkdir()
    data["watches"].append({**data["watches"][0], "name": "nfs", "path": str(tmp_path / "nfs")})
    path.write_text(yaml.safe_dump(data))
    share = HungShare(tmp_path / "nfs")
    with running(config.load(path), fs=share) as daemon:
        drop_one(tmp_path / "nfs", "n.mov", "n.xml")
        assert share.blocked.wait(10), "the nfs watch should be stuck in a stat"
        drop_one(tmp_path / "drop")
        wait_until(
            lambda: daemon.journal.counts().get(State.COMPLETE) == 1,
            what="the healthy watch's submission, despite the hung one",
        )
        assert not (tmp_path / "ingest" / "n.xml").exists()
        share.release.set()
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 2)
