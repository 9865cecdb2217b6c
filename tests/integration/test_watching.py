"""Watching as users of hot folders need it: polling, the inotify limit, a share that goes
away and comes back, copiers that rename or rewrite, many files at once."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from hotfolder.assemble.tracker import LocalFileSystem
from hotfolder.beneath import Look
from hotfolder.config import settings as config
from hotfolder.intake import watch
from hotfolder.intake.watch import Alarm, Change, Watcher
from hotfolder.model import State
from tests import manifests
from tests.helpers import running, wait_until, write_config


def drop_one(folder: Path, video: str = "a.mov", manifest: str = "m.xml") -> None:
    (folder / video).write_bytes(b"v" * 1000)
    (folder / manifest).write_text(manifests.ooyala(manifests.ooyala_item(video, None, None)))


def test_poll_mode_delivers_with_inotify_off(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, mode="poll", poll_interval=0.2, rescan_seconds=3600))
    with running(cfg) as daemon:
        assert daemon.watch("w").mode == "poll"
        assert daemon.watcher is not None
        assert not daemon.watcher._watches, "poll mode must not hold an inotify watch"
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
        assert daemon.watch("w").mode == "poll"
        drop_one(tmp_path / "drop")
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    (warning,) = [e for e in logs if e["event"].startswith("inotify refused")]
    assert "fs.inotify.max_user_watches" in warning["hint"]


def host_inotify_limits() -> tuple[str, str]:
    return (
        Path("/proc/sys/fs/inotify/max_user_watches").read_text(),
        Path("/proc/sys/user/max_inotify_watches").read_text(),
    )


#: The folder itself and two subfolders: the third subfolder is refused.
WATCH_LIMIT = 3

#: Lowers the limit in a user namespace of its own (per namespace since Linux 5.11), then runs
#: the daemon there. Only /proc/sys/user/ is per namespace: /proc/sys/fs/inotify/ is the host's
#: even from in there (root maps to root), so it is never written.
IN_A_USER_NAMESPACE = (
    'echo "$1" > /proc/sys/user/max_inotify_watches && exec "$2" -m hotfolder run --config "$3"'
)


@pytest.mark.parametrize("made", ["before-the-start", "while-running"])
def test_subfolders_past_the_inotify_limit_are_polled(tmp_path: Path, made: str) -> None:
    path = write_config(tmp_path, mode="inotify", poll_interval=0.2, rescan_seconds=3600)
    drop, ingest, output = tmp_path / "drop", tmp_path / "ingest", tmp_path / "daemon.log"
    folders = [drop / name for name in ("a", "b", "c", "d")]  # c and d: watches refused
    if made == "before-the-start":
        for folder in folders:
            folder.mkdir()
    host = host_inotify_limits()
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", IN_A_USER_NAMESPACE, "sh"]
    with open(output, "wb") as out:
        daemon = subprocess.Popen(
            [*argv, str(WATCH_LIMIT), sys.executable, str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def logged(event: str) -> list[dict[str, Any]]:
        lines = output.read_text().splitlines()
        found = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in found if e["event"].startswith(event)]

    try:
        wait_until(lambda: logged("ready") or daemon.poll() is not None, what="the daemon")
        assert daemon.poll() is None, output.read_text()
        if made == "while-running":
            for folder in folders:
                folder.mkdir()
        drop_one(drop, "first.mov", "first.xml")  # its events come after the folders'
        wait_until((ingest / "first.xml").exists, what="the first submission")
        for name in ("a", "c", "d"):  # written after their folders were seen
            drop_one(drop / name, f"{name}.mov", f"{name}.xml")
        wait_until(
            lambda: all((ingest / f"{name}.xml").exists() for name in ("a", "c", "d")),
            what="the submissions in unwatched folders, by polling (the rescan is an hour away)",
        )
        (warning,) = logged("inotify refused")
        assert "fs.inotify.max_user_watches" in warning["hint"]
        assert logged("watching")[-1]["mode"] == "poll"
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    assert host_inotify_limits() == host, "the host's limits are left alone"


def test_a_share_that_disappears_loses_nothing_and_resumes(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, rescan_seconds=3600))
    drop, away = tmp_path / "drop", tmp_path / "unmounted"
    with capture_logs() as logs, running(cfg) as daemon:
        (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("late.mov", None, None)))
        sid = wait_until(
            lambda: next((r.id for r in daemon.journal.rows() if r.state is State.PENDING), None)
        )
        drop.rename(away)  # the share goes away
        wait_until(lambda: not daemon.watch("w").available, what="the outage noticed")
        assert daemon.journal.state_of(sid) is State.PENDING, "nothing treated as deleted"
        (away / "late.mov").write_bytes(b"x")
        away.rename(drop)  # and comes back, with the missing file
        wait_until(lambda: daemon.journal.state_of(sid) is State.COMPLETE, timeout=20)
    outages = [e for e in logs if e["event"].startswith("watch folder unavailable")]
    assert len(outages) == 1, "an outage is reported once, not at every probe"


@contextmanager
def bind_mounted(source: Path, point: Path) -> Iterator[None]:
    """`source` seen at `point` (in the suite's private mount namespace), undone on the way out."""
    subprocess.run(["mount", "--bind", str(source), str(point)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(point)], check=False)


@pytest.mark.parametrize("share_fs", ["tmpfs", "same-fs"])
def test_an_unmounted_share_is_unavailable_not_empty(tmp_path: Path, share_fs: str) -> None:
    # The drop folder is a share: the server's folder bind-mounted at the drop path, from a
    # file system of its own (tmpfs) or from the same one (where only the inode tells).
    server = tmp_path / "server"
    server.mkdir()
    if share_fs == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(server)], check=True)
    try:
        cfg = config.load(write_config(tmp_path, rescan_seconds=3600))
        drop = tmp_path / "drop"
        # Written before the start, so that it is never seen half-written (another id).
        (server / "m.xml").write_text(
            manifests.ooyala(manifests.ooyala_item("late.mov", None, None))
        )
        with bind_mounted(server, drop), capture_logs() as logs, running(cfg) as daemon:
            sid = wait_until(
                lambda: next((r.id for r in daemon.journal.rows() if r.state is State.PENDING), 0)
            )
            subprocess.run(["umount", str(drop)], check=True)  # the share goes away mid-wait
            assert not any(drop.iterdir()), "a bare, empty mount point"
            wait_until(lambda: not daemon.watch("w").available, what="the outage noticed")
            assert daemon.journal.state_of(sid) is State.PENDING, "nothing treated as deleted"
            (server / "late.mov").write_bytes(b"x")  # the missing file lands on the server
            subprocess.run(["mount", "--bind", str(server), str(drop)], check=True)  # back
            # Generous: the probe backoff may have grown while a loaded machine ran the steps.
            wait_until(lambda: daemon.journal.state_of(sid) is State.COMPLETE, timeout=90)
            assert [r.id for r in daemon.journal.rows()] == [sid], "one submission, kept"
        (outage,) = [e for e in logs if e["event"].startswith("watch folder unavailable")]
        assert outage["found"] == "unmounted"
        assert (tmp_path / "ingest" / "m.xml").exists()
    finally:
        if share_fs == "tmpfs":
            subprocess.run(["umount", str(server)], check=False)


def test_a_drop_folder_deleted_and_made_again_is_watched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def same_inode_number(root: Path, mountinfo: Callable[[], str] = watch.read_mountinfo) -> Any:
        found = real_identify(root, mountinfo)
        return None if found is None else dataclasses.replace(found, ino=1)

    # ext4 often gives the new folder the old one's inode number; always, here, so that only
    # the end of the folder's own inotify watch can tell the new folder from the old one.
    real_identify = watch.identify
    monkeypatch.setattr(watch, "identify", same_inode_number)
    cfg = config.load(write_config(tmp_path, mode="inotify", rescan_seconds=3600))
    drop = tmp_path / "drop"
    (tmp_path / "new").mkdir()
    with running(cfg) as daemon:
        # Deleted and made again in one step (a new folder renamed over the empty one), so
        # that no look in between finds it missing. The old folder's inotify watch dies.
        os.rename(tmp_path / "new", drop)
        drop_one(drop)  # only a new watch (or the next rescan, an hour away) can see this
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)


def test_the_watcher_says_when_its_own_folder_goes(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    sink: queue.SimpleQueue[Change] = queue.SimpleQueue()
    watcher = Watcher()
    watcher.start()
    try:
        watcher.add("w", folder, sink)
        folder.rmdir()
        seen: list[Change] = []

        def alarmed() -> bool:
            while not sink.empty():
                seen.append(sink.get())
            return any(c.alarm is Alarm.ROOT_LOST for c in seen)

        wait_until(alarmed, what="a ROOT_LOST alarm")
        assert all(c.watch == "w" for c in seen)
    finally:
        watcher.stop()


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
            lambda: daemon.watch("w").remembered < 10,
            what="the event bookkeeping to be pruned",
        )


class HungShare(LocalFileSystem):
    """A file system whose stat and read hang under one folder, like a dead NFS mount."""

    def __init__(self, hung: Path) -> None:
        self.hung = hung
        self.release = threading.Event()
        self.blocked = threading.Event()

    def _maybe_hang(self, root: Path) -> None:
        if root == self.hung or self.hung in root.parents:
            self.blocked.set()
            self.release.wait(30)

    def look(self, root: Path, relpath: PurePosixPath) -> Look:
        self._maybe_hang(root)
        return super().look(root, relpath)

    def read(self, root: Path, relpath: PurePosixPath, limit: int) -> bytes:
        self._maybe_hang(root)
        return super().read(root, relpath, limit)


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
