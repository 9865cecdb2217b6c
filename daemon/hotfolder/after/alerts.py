"""Notifications: e-mail (SMTP) and/or a webhook (JSON POST), on failures and as a periodic
digest of completions. Batched: the failures of one `batch_seconds` window go out as one
message, so a burst of 50 failures is one e-mail, not fifty. Sending never blocks the daemon:
a thread of its own does it, and a send that fails is logged and tried again next round.

Word to whoever dropped it: with `editors:` (user name -> address) and e-mail set up, the
failures of a manifest's owner also go to that editor, in the same window, as one message of
their own (only theirs), each with the reason and the link to its page (`http.public_url`).
An editor's message is retried on its own, so a bad address never re-sends the admins' mail.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
import structlog

from hotfolder.after.background import Background
from hotfolder.clock import Clock
from hotfolder.config import schema
from hotfolder.config.schema import default
from hotfolder.config.sections import EmailSettings, NotificationSettings, WebhookSettings
from hotfolder.credentials import read_secret

if TYPE_CHECKING:
    from hotfolder.config.settings import Config

log = structlog.get_logger()
MAX_TRIES = 5


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "failed" | "held" | "complete"
    submission_id: str
    watch: str
    summary: str  # the reason (failed) or "N files, B bytes" (complete)
    report: str | None = None
    owner: str | None = None  # who dropped it (the manifest's owner), when known


@dataclass(slots=True)
class _Batch:
    events: list[Event] = field(default_factory=list)
    tries: int = 0


Sender = Callable[[str, str, dict[str, Any]], None]  # subject, text, payload
Mailer = Callable[[Sequence[str], str, str], None]  # to, subject, text


def smtp_sender(spec: EmailSettings) -> Sender:
    mail = smtp_mailer(spec)

    def send(subject: str, text: str, _payload: dict[str, Any]) -> None:
        mail(spec.to, subject, text)

    return send


def smtp_mailer(spec: EmailSettings) -> Mailer:
    """Mail through the configured server to any addresses (the admins', or one editor's)."""

    def send(to: Sequence[str], subject: str, text: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = spec.sender
        message["To"] = ", ".join(to)
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
        *,
        editors: dict[str, str] | None = None,
        mailer: Mailer | None = None,
        public_url: str | None = None,
    ) -> None:
        super().__init__("alerts", stop)
        self.senders = senders
        self.clock = clock
        self.batch_seconds = batch_seconds
        self.digest_every = digest_every
        self.host = host
        self.editors = dict(editors or {}) if mailer is not None else {}
        self.mailer = mailer
        self.public_url = public_url
        self._failures = _Batch()
        self._for_editors: dict[str, _Batch] = {}  # address -> that editor's failures
        self._completions = _Batch()
        self._first_failure: float | None = None
        self._next_digest = clock.monotonic() + digest_every
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        spec: NotificationSettings,
        clock: Clock,
        stop: threading.Event,
        cfg: Config | None = None,
    ) -> Alerts | None:
        """`cfg` for the editors and the page links (`editors:`, `http.public_url`)."""
        senders: dict[str, Sender] = {}
        mailer: Mailer | None = None
        if spec.email is not None:
            senders["email"] = smtp_sender(spec.email)
            mailer = smtp_mailer(spec.email)
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
            editors=cfg.editors if cfg is not None else None,
            mailer=mailer,
            public_url=cfg.http.public_url if cfg is not None and cfg.http is not None else None,
        )

    def join(self) -> None:
        """Flush what is pending (a stopping daemon still tells of its last failures)."""
        self._end(15)
        self._flush_failures()

    def failed(
        self,
        sid: str,
        watch: str,
        reason: str,
        report: str | None = None,
        owner: str | None = None,
    ) -> None:
        event = Event("failed", sid, watch, reason, report, owner)
        address = self.editors.get(owner) if owner is not None else None
        with self._lock:
            self._failures.events.append(event)
            if address is not None:
                self._for_editors.setdefault(address, _Batch()).events.append(event)
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
        with self._lock:
            for_editors, self._for_editors = self._for_editors, {}
        for address, batch in for_editors.items():
            self._mail_editor(address, batch)

    def _mail_editor(self, address: str, batch: _Batch) -> None:
        if self.mailer is None:
            return
        subject, text, _ = render(batch.events, "failures", self.host, self.public_url, True)
        try:
            self.mailer((address,), subject, text)
        except (OSError, smtplib.SMTPException) as err:
            # the address is not logged: the owner's user name says whose it is
            log.warning(
                "editor not told; will try again",
                editor=batch.events[0].owner,
                error=str(err),
                events=len(batch.events),
            )
            if batch.tries + 1 < MAX_TRIES:
                batch.tries += 1
                with self._lock:  # back in the queue, ahead of newer events
                    self._for_editors.setdefault(address, _Batch()).events[:0] = batch.events
                    self._for_editors[address].tries = batch.tries
                    if self._first_failure is None:
                        self._first_failure = self.clock.monotonic()
        else:
            log.info("editor told", editor=batch.events[0].owner, events=len(batch.events))

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
        subject, text, payload = render(batch.events, what, self.host, self.public_url)
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


def page_url(public_url: str | None, sid: str) -> str | None:
    """The submission's page in the window, as people reach it (None without a public URL)."""
    if public_url is None:
        return None
    return f"{public_url.rstrip('/')}/submissions/{quote(sid, safe='')}"


def render(
    events: list[Event],
    what: str,
    host: str,
    public_url: str | None = None,
    to_editor: bool = False,
) -> tuple[str, str, dict[str, Any]]:
    if what == "failures":
        subject = (
            f"hotfolder{f' on {host}' if host else ''}: {len(events)} submission"
            f"{'s' if len(events) != 1 else ''} failed"
        )
        lines = []
        for e in events:
            url = page_url(public_url, e.submission_id)
            lines.append(
                f"- [{e.watch}] {e.submission_id}: "
                + ("HELD, waiting for an admin: " if e.kind == "held" else "")
                + e.summary
                + (f"\n  dropped by: {e.owner}" if e.owner and not to_editor else "")
                + (f"\n  page: {url}" if url else "")
                + (f"\n  report: {e.report}" if e.report else "")
            )
        text = (
            (
                "What you dropped was NOT sent:\n\n"
                if to_editor
                else "These submissions were NOT sent:\n\n"
            )
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
                "owner": e.owner,
                "url": page_url(public_url, e.submission_id),
            }
            for e in events
        ],
    }
    return subject, text, payload
