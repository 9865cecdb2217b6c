"""Alerts are batched: the failures and holds of one `batch_seconds` window go out as one
message once the window has passed; completions only in the digest; a send that fails is
tried again with the newer events behind the older ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
