"""A fleet's manifest session shares its receipt with the other nodes (issue 13): without it a
node taking the submission over would hold it. The database may be away for a while; the
receipt waits for it rather than being dropped, and a shutdown stops the wait."""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath

from hotfolder.clock import FakeClock
from hotfolder.state.journal_file import JournalUnavailable
from hotfolder.transfer.targets.ascp import RECEIPT_PATIENCE, AscpSettings, AscpTarget
from hotfolder.transfer.targets.base import Session


class FlakyStore:
    """A fleet's evidence store whose database answers only from the `answers_at`-th call."""

    def __init__(self, answers_at: int) -> None:
        self.answers_at, self.calls = answers_at, 0
        self.receipts: dict[tuple[str, str], str] = {}

    def put_receipt(self, sid: str, session: str, body: str) -> None:
        self.calls += 1
        if self.calls < self.answers_at:
            raise JournalUnavailable("journal db cannot be reached", "it retries")
        self.receipts[(sid, session)] = body

    def mark_attempt(self, sid: str, session: str) -> None: ...

    def unmark_attempt(self, sid: str, session: str) -> None: ...

    def attempted(self, sid: str, session: str) -> bool:
        return True

    def receipt(self, sid: str, session: str) -> str | None:
        return self.receipts.get((sid, session))


def sender(tmp_path: Path, store: FlakyStore, clock: FakeClock) -> tuple[AscpTarget, Session]:
    options = {"host": "ingest.example.com", "user": "u", "destination": "/in"}
    target = AscpTarget(
        AscpSettings.from_options("aspera", options, tmp_path / "ascp"), clock=clock, shared=store
    )
    session = Session("m-1", "manifest", ((tmp_path / "m.xml", PurePosixPath("m.xml")),))
    folder = target.receipt_dir(session)
    folder.mkdir(parents=True)
    (folder / "aspera-transfer-1-manifest.txt").write_text("/in/m.xml\n")
    return target, session


def test_a_receipt_waits_for_the_database_instead_of_being_dropped(tmp_path: Path) -> None:
    store, clock = FlakyStore(answers_at=4), FakeClock()
    target, session = sender(tmp_path, store, clock)
    target._share_receipts(session, threading.Event())
    assert store.calls == 4
    assert store.receipts == {("m-1", "manifest"): "/in/m.xml\n"}


def test_a_receipt_gives_up_after_its_patience_or_at_shutdown(tmp_path: Path) -> None:
    store, clock = FlakyStore(answers_at=10**6), FakeClock()
    target, session = sender(tmp_path, store, clock)
    start = clock.monotonic()
    target._share_receipts(session, threading.Event())
    assert RECEIPT_PATIENCE <= clock.monotonic() - start < RECEIPT_PATIENCE + 20
    assert store.receipts == {}  # a takeover holds it: safe, never sent twice
    shutdown = threading.Event()
    shutdown.set()
    calls = store.calls
    target._share_receipts(session, shutdown)
    assert store.calls == calls + 1  # one try, then the shutdown ends the wait
