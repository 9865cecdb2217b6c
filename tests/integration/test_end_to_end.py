"""The whole path with the real watchdog observer, real files and the local target."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from hotfolder.config import settings as config
from hotfolder.model import State
from tests import manifests
from tests.helpers import running, wait_until, write_config


class Arrivals(FileSystemEventHandler):
    """Records, in order and with the time seen, each final name appearing at the target."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        now = time.monotonic()
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = Path(str(raw))
            if (
                raw
                and not event.is_directory
                and event.event_type in ("created", "moved")
                and (path.exists() or event.event_type == "created")
            ):
                with self.lock:
                    self.seen.append((now, path.relative_to(self.root).as_posix()))

    def finals(self) -> list[str]:
        with self.lock:
            names = [n for _, n in self.seen if not n.endswith(".partial")]
        return list(dict.fromkeys(names))

    def first_time(self) -> float | None:
        with self.lock:
            return self.seen[0][0] if self.seen else None


@pytest.fixture
def arrivals(tmp_path: Path) -> Iterator[Arrivals]:
    (tmp_path / "ingest").mkdir()
    handler = Arrivals(tmp_path / "ingest")
    observer = Observer()
    observer.schedule(handler, str(tmp_path / "ingest"), recursive=True)
    observer.start()
    yield handler
    observer.stop()
    observer.join()


def slow_write(path: Path, chunks: int, pause: float, chunk: bytes) -> float:
    """Write like a slow copier; return the monotonic time of the last byte."""
    with open(path, "ab") as f:
        for _ in range(chunks):
            f.write(chunk)
            f.flush()
            time.sleep(pause)  # the scenario: a copier pausing between chunks, not a wait
    return time.monotonic()


def test_slow_copy_manifest_first_is_sent_media_first_and_archived(
    tmp_path: Path, arrivals: Arrivals
) -> None:
    cfg = config.load(write_config(tmp_path, stability_seconds=0.6))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        (drop / "m.xml").write_text(manifests.ooyala())  # the editor drops the manifest first
        (drop / "my_thumbnail.jpg").write_bytes(b"\xff\xd8" * 100)
        (drop / "caption-1.dfxp").write_text("<tt/>")
        last_byte = slow_write(drop / "my_video.mov", chunks=8, pause=0.2, chunk=b"v" * 65536)
        sid = wait_until(
            lambda: next(
                (
                    r.id
                    for r in daemon.journal.rows()
                    if r.state is State.COMPLETE and r.postprocessed
                ),
                None,
            ),
            what="the submission to complete",
        )
    first = arrivals.first_time()
    assert first is not None
    assert first >= last_byte + 0.6, "something reached the target before the last byte settled"
    finals = arrivals.finals()
    assert set(finals) == {"my_video.mov", "my_thumbnail.jpg", "caption-1.dfxp", "m.xml"}
    assert finals[-1] == "m.xml", f"manifest was not last: {finals}"
    ingest = tmp_path / "ingest"
    assert not list(ingest.rglob("*.partial"))
    assert (ingest / "my_video.mov").stat().st_size == 8 * 65536
    assert sorted(p.name for p in drop.iterdir()) == []
    archived = next((tmp_path / "archive").glob(f"*/{sid}"))
    assert sorted(p.name for p in archived.iterdir()) == [
        "caption-1.dfxp",
        "m.xml",
        "my_thumbnail.jpg",
        "my_video.mov",
        "receipt.json",
    ]
    receipt = json.loads((archived / "receipt.json").read_text())
    assert receipt["submission"] == sid


def test_restart_after_a_sent_submission_sends_nothing_twice(
    tmp_path: Path, arrivals: Arrivals
) -> None:
    cfg = config.load(write_config(tmp_path, after_success="keep"))
    drop = tmp_path / "drop"
    for name in ("my_video.mov", "my_thumbnail.jpg", "caption-1.dfxp"):
        (drop / name).write_bytes(name.encode())
    (drop / "m.xml").write_text(manifests.ooyala())
    with running(cfg) as daemon:
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    wait_until(lambda: len(arrivals.finals()) == 4)
    delivered = {p: p.stat().st_mtime_ns for p in (tmp_path / "ingest").iterdir()}
    arrivals_before = len(arrivals.seen)
    with running(config.load(tmp_path / "hotfolder.yaml"), use_observer=True) as daemon:
        # the restarted daemon scans, finds the same manifest, and must recognise it as sent
        wait_until(
            lambda: daemon.watch("w").next_due == float("inf"),
            what="the rescan to settle",
        )
        assert daemon.journal.counts() == {State.COMPLETE: 1}
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ingest").iterdir()} == delivered
    assert len(arrivals.seen) == arrivals_before, "something arrived at the target again"
    assert len(arrivals.finals()) == 4


def test_files_dropped_while_down_are_found_by_the_startup_scan(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop" / "show"  # in a sub-folder, too
    drop.mkdir(parents=True)
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    with running(cfg) as daemon:
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    assert (tmp_path / "ingest" / "a.mov").read_bytes() == b"a"
    assert (tmp_path / "ingest" / "m.xml").exists()


def test_a_broken_manifest_is_quarantined_and_others_still_go(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        (drop / "broken.xml").write_text(manifests.ooyala()[:150])
        (drop / "good.mov").write_bytes(b"g")
        (drop / "good.xml").write_text(
            manifests.ooyala(manifests.ooyala_item("good.mov", None, None))
        )
        wait_until(lambda: daemon.journal.counts() == {State.COMPLETE: 1, State.FAILED: 1})
    (failed,) = (tmp_path / "failed").iterdir()
    report = (failed / "REPORT.txt").read_text()
    assert "was NOT sent" in report
    assert "not well-formed" in report
    assert "line" in report
    data = json.loads((failed / "report.json").read_text())
    assert data["problems"][0]["code"] == "malformed-manifest"
    assert (failed / "broken.xml").exists(), "the manifest must be kept, not deleted"
    assert not (tmp_path / "ingest" / "broken.xml").exists()


def test_a_destination_that_refuses_fails_with_a_report_and_keeps_the_sources(
    tmp_path: Path,
) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    ingest = tmp_path / "ingest"
    (ingest / "a.mov").mkdir()  # a folder where the file must go: the rename cannot succeed
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    with running(cfg) as daemon:
        wait_until(lambda: daemon.journal.counts().get(State.FAILED) == 1)
    (failed,) = (tmp_path / "failed").iterdir()
    assert (failed / "a.mov").read_bytes() == b"a"
    assert (failed / "m.xml").exists()
    assert "failed" in (failed / "REPORT.txt").read_text()
    assert not (ingest / "m.xml").exists(), "the manifest must never go after failed media"


def test_a_submission_over_the_account_quota_fails_with_a_reason(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("type: local", "type: local\n    quota_bytes: 1000"))
    cfg = config.load(path)
    drop = tmp_path / "drop"
    (drop / "big.mov").write_bytes(b"b" * 2000)
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("big.mov", None, None)))
    with running(cfg) as daemon:
        wait_until(lambda: daemon.journal.counts().get(State.FAILED) == 1)
    (failed,) = (tmp_path / "failed").iterdir()
    assert "more than the account holds" in (failed / "REPORT.txt").read_text()
    assert (failed / "big.mov").exists()
    assert list((tmp_path / "ingest").iterdir()) == []


def test_a_writer_pausing_longer_than_the_window_is_waited_for(
    tmp_path: Path, arrivals: Arrivals
) -> None:
    """A local copier that stalls with the file open: inotify's missing close-after-write says
    it is not done, so nothing is sent until it closes."""
    cfg = config.load(write_config(tmp_path, stability_seconds=0.3))
    drop = tmp_path / "drop"
    with running(cfg) as daemon:
        (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
        with open(drop / "a.mov", "wb") as f:
            f.write(b"first half ")
            f.flush()
            time.sleep(1.2)  # the scenario: a stall four times the window, file still open
            f.write(b"second half")
            f.flush()
        closed = time.monotonic()
        wait_until(lambda: daemon.journal.counts().get(State.COMPLETE) == 1)
    assert (tmp_path / "ingest" / "a.mov").read_bytes() == b"first half second half"
    first = arrivals.first_time()
    assert first is not None
    assert first >= closed, "the half-written file was sent"
