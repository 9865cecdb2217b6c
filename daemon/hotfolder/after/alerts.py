"""Notifications: e-mail (SMTP) and/or a webhook (JSON POST), on failures and as a periodic
digest of completions. Batched: the failures of one `batch_seconds` window go out as one
message, so a burst of 50 failures is one e-mail, not fifty. Sending never blocks the daemon:
a thread of its own does it, and a send that fails is logged and tried again next round.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import requests
import structlog

from hotfolder.after.background import Background
from hotfolder.clock import Clock
from hotfolder.config import schema
from hotfolder.config.schema import default
from hotfolder.config.sections import EmailSettings, NotificationSettings, WebhookSettings
from hotfolder.credentials import read_secret

log = structlog.get_logger()
MAX_TRIES = 5


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "failed" | "held" | "complete"
    submission_id: str
    watch: str
    summary: str  # the reason (failed) or "N files, B bytes" (complete)
    report: str | None = None


@dataclass(slots=True)
class _Batch:
    events: list[Event] = field(default_factory=list)
    tries: int = 0


Sender = Callable[[str, str, dict[str, Any]], None]  # subject, text, payload


def smtp_sender(spec: EmailSettings) -> Sender:
    def send(subject: str, text: str, _payload: dict[str, Any]) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = spec.sender
        message["To"] = ", ".join(spec.to)
        message.set_content(text)
        with smtplib.SMTP(spec.host, spec.port, timeout=30) as smtp:
            if spec.starttls:
                smtp.starttls(context=ssl.create_default_context())
            password = read_secret(spec.password.file, spec.password.credential)
            if spec.username and password is not None:
                smtp.login(spec.username, password)
            smtp.send_message(message)

    return send


def webhook_sender(spec: WebhookSettings) -> Sender:
    session = requests.Session()

    def send(_subject: str, _text: str, payload: dict[str, Any]) -> None:
        response = session.post(spec.url, json=payload, timeout=float(spec.timeout))
        response.raise_for_status()

    return send


class Alerts(Background):
    def __init__(
        self,
        senders: dict[str, Sender],
        clock: Clock,
        stop: threading.Event,
        batch_seconds: float = default(schema.NOTIFICATIONS, "batch_seconds"),
        digest_every: float = default(schema.NOTIFICATIONS, "digest_every"),
        host: str = "",
    ) -> None:
        super().__init__("alerts", stop)
        self.senders = senders
        self.clock = clock
        self.batch_seconds = batch_seconds
        self.digest_every = digest_every
        self.host = host
        self._failures = _Batch()
        self._completions = _Batch()
        self._first_failure: float | None = None
        self._next_digest = clock.monotonic() + digest_every
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, spec: NotificationSettings, clock: Clock, stop: threading.Event
    ) -> Alerts | None:
        senders: dict[str, Sender] = {}
        if spec.email is not None:
            senders["email"] = smtp_sender(spec.email)
        if spec.webhook is not None:
            senders["webhook"] = webhook_sender(spec.webhook)
        if not senders:
            return None
        import socket  # noqa: PLC0415 - only the host name, once

        return cls(
            senders,
            clock,
            stop,
            float(spec.batch_seconds),
            float(spec.digest_every),
            socket.gethostname(),
        )

    def join(self) -> None:
        """Flush what is pending (a stopping daemon still tells of its last failures)."""
        self._end(15)
        self._flush_failures()

    def failed(self, sid: str, watch: str, reason: str, report: str | None = None) -> None:
        with self._lock:
            self._failures.events.append(Event("failed", sid, watch, reason, report))
            if self._first_failure is None:
                self._first_failure = self.clock.monotonic()
        self.wake()

    def held(self, sid: str, watch: str, reason: str) -> None:
        """A submission waits for an admin (a credential, the target, an unprovable manifest):
        batched with the failures, so someone acts on it."""
        with self._lock:
            self._failures.events.append(Event("held", sid, watch, reason))
            if self._first_failure is None:
                self._first_failure = self.clock.monotonic()
        self.wake()

    def completed(self, sid: str, watch: str, summary: str) -> None:
        if self.digest_every > 0:
            with self._lock:
                self._completions.events.append(Event("complete", sid, watch, summary))

    def turn(self) -> float:
        """One look of the sending thread: send what is due. Tests call it with a fake clock."""
        now = self.clock.monotonic()
        with self._lock:
            due = (
                self._first_failure is not None and now - self._first_failure >= self.batch_seconds
            )
        if due:
            self._flush_failures()
        if self.digest_every > 0 and now >= self._next_digest:
            self._next_digest = now + self.digest_every
            self._flush(self._take("complete"), "digest")
        return 1.0  # batches and digests are due to the second at most

    def _flush_failures(self) -> None:
        self._flush(self._take("failed"), "failures")

    def _take(self, kind: str) -> _Batch:
        with self._lock:
            if kind == "failed":
                batch, self._failures = self._failures, _Batch()
                self._first_failure = None
            else:
                batch, self._completions = self._completions, _Batch()
        return batch

    def _flush(self, batch: _Batch, what: str) -> None:
        if not batch.events:
            return
        subject, text, payload = render(batch.events, what, self.host)
        failed = False
        for name, send in self.senders.items():
            try:
                send(subject, text, payload)
            except (OSError, smtplib.SMTPException, requests.RequestException) as err:
                failed = True
                log.warning(
                    "notification not sent; will try again",
                    channel=name,
                    error=str(err),
                    events=len(batch.events),
                )
        if failed and batch.tries + 1 < MAX_TRIES:
            batch.tries += 1
            with self._lock:  # back in the queue, ahead of newer events
                target = self._failures if what == "failures" else self._completions
                target.events[:0] = batch.events
                if what == "failures" and self._first_failure is None:
                    self._first_failure = self.clock.monotonic()
        else:
            log.info("notification sent", kind=what, events=len(batch.events))


def render(events: list[Event], what: str, host: str) -> tuple[str, str, dict[str, Any]]:
    if what == "failures":
        subject = (
            f"hotfolder{f' on {host}' if host else ''}: {len(events)} submission"
            f"{'s' if len(events) != 1 else ''} failed"
        )
        lines = [
            f"- [{e.watch}] {e.submission_id}: "
            + ("HELD, waiting for an admin: " if e.kind == "held" else "")
            + e.summary
            + (f"\n  report: {e.report}" if e.report else "")
            for e in events
        ]
        text = (
            "These submissions were NOT sent:\n\n"
            + "\n".join(lines)
            + "\n\nEach report says what went wrong and what to do.\n"
        )
    else:
        subject = (
            f"hotfolder{f' on {host}' if host else ''}: {len(events)} submission"
            f"{'s' if len(events) != 1 else ''} delivered"
        )
        text = (
            "Delivered:\n\n"
            + "\n".join(f"- [{e.watch}] {e.submission_id}: {e.summary}" for e in events)
            + "\n"
        )
    payload = {
        "kind": what,
        "host": host,
        "count": len(events),
        "events": [
            {
                "kind": e.kind,
                "submission_id": e.submission_id,
                "watch": e.watch,
                "summary": e.summary,
                "report": e.report,
            }
            for e in events
        ],
    }
    return subject, text, payload
