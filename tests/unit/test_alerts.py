"""Alerts are batched: the failures and holds of one `batch_seconds` window go out as one
message once the window has passed; completions only in the digest; a send that fails is
tried again with the newer events behind the older ones."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from hotfolder.after.alerts import Alerts
from hotfolder.clock import FakeClock


class Outbox:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self.while_sending: Callable[[], None] = lambda: None

    def __call__(self, subject: str, _text: str, payload: dict[str, Any]) -> None:
        if self.fail:
            self.fail -= 1
            self.while_sending()
            raise OSError("mail server down")
        self.sent.append((subject, payload))


def alerts(outbox: Outbox, clock: FakeClock, digest_every: float = 0.0) -> Alerts:
    return Alerts({"mail": outbox}, clock, threading.Event(), 60.0, digest_every, "host")


def ids(payload: dict[str, Any]) -> list[str]:
    return [e["submission_id"] for e in payload["events"]]


def test_failures_of_one_window_go_out_as_one_message_when_it_ends() -> None:
    clock, outbox = FakeClock(), Outbox()
    a = alerts(outbox, clock)
    a.failed("s1", "w", "bad name", "/failed/s1/REPORT.txt")
    clock.advance(30.0)
    a.failed("s2", "w", "missing file")
    a.held("s3", "w", "no password")
    a.turn()
    assert outbox.sent == [], "the window is not over"
    clock.advance(29.9)
    a.turn()
    assert outbox.sent == []
    clock.advance(0.1)  # 60 s after the first failure
    a.turn()
    ((subject, payload),) = outbox.sent
    assert subject == "hotfolder on host: 3 submissions failed"
    assert ids(payload) == ["s1", "s2", "s3"]
    assert [e["kind"] for e in payload["events"]] == ["failed", "failed", "held"]
    a.turn()
    assert len(outbox.sent) == 1, "nothing twice"


def test_a_new_window_starts_with_the_next_failure() -> None:
    clock, outbox = FakeClock(), Outbox()
    a = alerts(outbox, clock)
    a.failed("s1", "w", "x")
    clock.advance(60.0)
    a.turn()
    clock.advance(100.0)
    a.failed("s2", "w", "y")
    a.turn()
    assert len(outbox.sent) == 1, "s2's window has just begun"
    clock.advance(60.0)
    a.turn()
    assert [ids(p) for _, p in outbox.sent] == [["s1"], ["s2"]]


def test_a_failed_send_is_tried_again_with_the_older_events_first() -> None:
    clock, outbox = FakeClock(), Outbox(fail=1)
    a = alerts(outbox, clock)
    outbox.while_sending = lambda: a.failed("s2", "w", "y")  # arrives while the send fails
    a.failed("s1", "w", "x")
    clock.advance(60.0)
    a.turn()
    assert outbox.sent == []
    a.turn()
    assert outbox.sent == [], "the retry waits a window too"
    clock.advance(60.0)
    a.turn()
    ((_, payload),) = outbox.sent
    assert ids(payload) == ["s1", "s2"]


def test_completions_wait_for_the_digest() -> None:
    clock, outbox = FakeClock(), Outbox()
    a = alerts(outbox, clock, digest_every=3600.0)
    a.completed("s1", "w", "2 files, 10 bytes")
    clock.advance(3599.0)
    a.turn()
    assert outbox.sent == []
    clock.advance(1.0)
    a.turn()
    ((subject, payload),) = outbox.sent
    assert subject == "hotfolder on host: 1 submission delivered"
    assert payload["kind"] == "digest"


# -- word to whoever dropped it (issue 12) -------------------------------------------------------


class Mailbox:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[tuple[str, ...], str, str]] = []
        self.fail = fail

    def __call__(self, to: Sequence[str], subject: str, text: str) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("mailbox full")
        self.sent.append((tuple(to), subject, text))


def with_editors(outbox: Outbox, mailbox: Mailbox, clock: FakeClock) -> Alerts:
    return Alerts(
        {"mail": outbox},
        clock,
        threading.Event(),
        60.0,
        0.0,
        "host",
        editors={"ada": "ada@example.com"},
        mailer=mailbox,
        public_url="https://ingest.example.com/hotfolder/",
    )


def test_an_editors_failures_go_to_them_too_in_the_same_window_with_the_page_link() -> None:
    clock, outbox, mailbox = FakeClock(), Outbox(), Mailbox()
    a = with_editors(outbox, mailbox, clock)
    a.failed("s1", "w", "bad name", "/failed/s1/REPORT.txt", owner="ada")
    a.failed("s2", "w", "too big", owner="bob")  # nobody's address: the admins only
    a.failed("s3", "w", "no video", owner=None)
    clock.advance(30)
    a.turn()
    assert outbox.sent == []
    assert mailbox.sent == []
    clock.advance(31)
    a.turn()
    ((_, payload),) = outbox.sent
    assert ids(payload) == ["s1", "s2", "s3"]
    assert payload["events"][0]["url"] == "https://ingest.example.com/hotfolder/submissions/s1"
    ((to, _, text),) = mailbox.sent
    assert to == ("ada@example.com",)
    assert "s1: bad name" in text
    assert "s2" not in text
    assert "s3" not in text
    assert "page: https://ingest.example.com/hotfolder/submissions/s1" in text


def test_an_editor_mail_that_fails_is_tried_again_alone() -> None:
    clock, outbox, mailbox = FakeClock(), Outbox(), Mailbox(fail=1)
    a = with_editors(outbox, mailbox, clock)
    a.failed("s1", "w", "bad name", owner="ada")
    clock.advance(61)
    a.turn()
    assert len(outbox.sent) == 1
    assert mailbox.sent == []
    clock.advance(61)
    a.turn()
    assert len(outbox.sent) == 1  # the admins are not told twice
    ((to, _, text),) = mailbox.sent
    assert to == ("ada@example.com",)
    assert "s1: bad name" in text
