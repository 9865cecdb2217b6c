"""Did the ingest land? After a submission completes, poll Backlot for each manifest item's
asset until it is live or processing (verified), reports an error (ingest-error), or the
timeout passes (not-found). Runs on its own thread: it never holds up an upload.

Whatever one look raises (an unreadable secret, a network fault, a bug) is that look's
outcome, not the thread's end: it is recorded as `verify-error` with the reason, and looked
at again with backoff until the timeout, so a fixed secret resumes every pending check.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog

from hotfolder.after.background import Background
from hotfolder.after.backlot import BacklotError, Client, Credentials
from hotfolder.clock import Clock
from hotfolder.config.sections import BacklotAccount
from hotfolder.credentials import CredentialError, read_secret
from hotfolder.state.port import JournalPort

log = structlog.get_logger()

#: Longest wait between two looks after errors (poll_interval doubles up to this).
MAX_BACKOFF = 600.0


class VerifyResult(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    INGEST_ERROR = "ingest-error"
    NOT_FOUND = "not-found"
    VERIFY_ERROR = "verify-error"  # the check itself could not be made (see its error)


GOOD = frozenset({"live", "processing", "uploaded", "paused"})
BAD = frozenset({"error", "failed", "ingest_error"})


@dataclass(frozen=True, slots=True)
class AssetKey:
    guid: str | None
    title: str | None

    def where(self) -> str | None:
        """The query-API condition that finds this item's asset. The guid is looked for as
        custom metadata (how Backlot keeps it is UNCONFIRMED); else the title as name."""
        if self.guid:
            return f"metadata.guid='{_quote(self.guid)}'"
        if self.title:
            return f"name='{_quote(self.title)}'"
        return None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def verdict(asset: dict[str, Any] | None) -> str | None:
    """'verified', 'ingest-error', or None while there is nothing to say yet."""
    if asset is None:
        return None
    status = str(asset.get("status", "")).lower()
    if status in BAD:
        return "ingest-error"
    if status in GOOD:
        return "verified"
    return None


@dataclass(slots=True)
class _Job:
    submission_id: str
    account: str
    keys: list[AssetKey]
    deadline: float
    poll_interval: float
    next_look: float
    results: dict[str, str] = field(default_factory=dict)
    errors: int = 0  # looks in a row that could not be made
    last_error: str | None = None


def client_for(account: BacklotAccount) -> Client:
    secret = read_secret(account.secret.file, account.secret.credential)
    if secret is None:  # the schema requires one of the two
        raise CredentialError("the Backlot account names neither a secret file nor a credential")
    return Client(Credentials(account.api_key, secret), account.api_host, account.read_host)


class Verifier(Background):
    def __init__(
        self,
        journal: JournalPort,
        accounts: Mapping[str, BacklotAccount],
        clock: Clock,
        stop: threading.Event,
    ) -> None:
        super().__init__("verify", stop)
        self.journal = journal
        self.accounts = accounts
        self.clock = clock
        self._jobs: list[_Job] = []
        self._lock = threading.Lock()

    def join(self) -> None:
        self._end(10)

    def add(
        self, sid: str, account: str, keys: list[AssetKey], timeout: float, poll_interval: float
    ) -> None:
        now = self.clock.monotonic()
        with self._lock:
            self._jobs.append(_Job(sid, account, keys, now + timeout, poll_interval, now))
        self.journal.record_verify(sid, VerifyResult.PENDING, {})
        self.wake()

    def turn(self) -> float:
        with self._lock:
            jobs = list(self._jobs)
        now = self.clock.monotonic()
        for job in jobs:
            if now >= job.next_look:
                try:
                    self._look_safely(job, now)
                except Exception:  # even recording the error failed (the journal?)
                    log.exception("verify: a check failed; it is looked at again later")
                    job.next_look = now + MAX_BACKOFF
        with self._lock:
            soonest = min((j.next_look for j in self._jobs), default=now + 5)
        return max(0.01, min(soonest - self.clock.monotonic(), 5))

    def _look_safely(self, job: _Job, now: float) -> None:
        """One look, and whatever it raises recorded as this job's verify-error."""
        try:
            self._look(job, now)
        except Exception as err:  # any fault is this check's, never the thread's
            self._failed_look(job, now, _why(err))

    def _failed_look(self, job: _Job, now: float, why: str) -> None:
        job.errors += 1
        job.last_error = why
        job.next_look = now + min(job.poll_interval * 2**job.errors, MAX_BACKOFF)
        log.warning(
            "verify: cannot check Backlot, will look again",
            submission_id=job.submission_id,
            error=why,
            retry_in_s=round(job.next_look - now, 1),
        )
        if now >= job.deadline:
            self._finish(job, VerifyResult.VERIFY_ERROR)
        else:
            self.journal.record_verify(
                job.submission_id, VerifyResult.VERIFY_ERROR, job.results, error=why
            )

    def _look(self, job: _Job, now: float) -> None:
        job.next_look = now + job.poll_interval
        try:
            client = client_for(self.accounts[job.account])
            for key in job.keys:
                where = key.where()
                if where is None or key.guid in job.results or key.title in job.results:
                    continue
                found = next(client.find(where, limit=1), None)
                result = verdict(found)
                if result is not None:
                    job.results[key.guid or key.title or "?"] = result
        except (BacklotError, OSError, KeyError, CredentialError) as err:
            self._failed_look(job, now, _why(err))
            return
        recovered = job.last_error is not None
        job.errors, job.last_error = 0, None
        keys = [k for k in job.keys if k.where() is not None]
        if any(r == "ingest-error" for r in job.results.values()):
            self._finish(job, VerifyResult.INGEST_ERROR)
        elif len(job.results) == len(keys):
            self._finish(job, VerifyResult.VERIFIED)
        elif now >= job.deadline:
            self._finish(job, VerifyResult.NOT_FOUND)
        elif recovered:
            # Still looking: clear the verify-error an earlier look left in the journal.
            self.journal.record_verify(job.submission_id, VerifyResult.PENDING, job.results)

    def _finish(self, job: _Job, result: VerifyResult) -> None:
        with self._lock:
            self._jobs.remove(job)
        self.journal.record_verify(job.submission_id, result, job.results, job.last_error)
        level = log.info if result is VerifyResult.VERIFIED else log.warning
        level(
            "ingest verified" if result is VerifyResult.VERIFIED else "ingest not verified",
            submission_id=job.submission_id,
            verify=str(result),
            assets=job.results,
            error=job.last_error,
        )


def _why(err: Exception) -> str:
    """What an admin reads in `status`: which secret or which request, in plain words."""
    if isinstance(err, CredentialError):
        return f"cannot read the Backlot secret: {err}"
    if isinstance(err, BacklotError):
        return f"Backlot request failed: {err}"
    if isinstance(err, KeyError):
        return f"no Backlot account {err} in the running config"
    return f"{type(err).__name__}: {err}"
