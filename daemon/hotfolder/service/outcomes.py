"""What becomes of a decision or a delivery: a journal write first, then the files, the people
and the log. Every failure goes through `reject` (a tracker's refusal, a quota that can never
fit, a transfer that failed): the journal, the quarantine with its report, the alert and one
outcome event, the same way every time. Every end is told by `log_ended`: one event, named after
the state, with the same keys (submission_id, watch, state, code, reason, files, bytes,
report) whatever ended it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import structlog

from hotfolder import beneath
from hotfolder.after import postprocess
from hotfolder.after.verify import AssetKey, Verifier
from hotfolder.assemble.owner import owner_of
from hotfolder.assemble.tracker import Decision, Failed, Gone, GoneWhy, Ready, Waiting
from hotfolder.clock import Clock
from hotfolder.config.settings import WatchConfig
from hotfolder.model import ManifestFormat, Problem, State
from hotfolder.service.in_force import Current
from hotfolder.state.journal import Row
from hotfolder.state.known import JournalKnown
from hotfolder.state.port import JournalPort
from hotfolder.transfer.delivery import Ended, Held, Refused

log = structlog.get_logger()

GONE_EVENTS = {
    GoneWhy.REMOVED: "manifest removed before sending",
    GoneWhy.REPLACED: "manifest changed while waiting; it is a new submission now",
    GoneWhy.NOT_A_MANIFEST: "not a manifest after all; left alone",
    GoneWhy.LEFT: "manifest left the drop folder",
}


class Tells(Protocol):
    """Who hears of ends (after.alerts.Alerts, batched)."""

    def failed(
        self,
        sid: str,
        watch: str,
        reason: str,
        report: str | None = None,
        owner: str | None = None,
    ) -> None: ...

    def held(self, sid: str, watch: str, reason: str) -> None: ...

    def completed(self, sid: str, watch: str, summary: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """A submission that will not be sent, and the files that go to failed_dir with it."""

    submission_id: str
    manifest: PurePosixPath
    present: tuple[PurePosixPath, ...]
    problems: tuple[Problem, ...]
    format: ManifestFormat | None = None
    new: bool = False  # no journal row yet: the tracker refused it at intake
    size: int | None = None  # bytes, where known
    owner: str | None = None  # who dropped it (the manifest's owner), for the editor's mail

    @classmethod
    def of_row(cls, row: Row, problem: Problem) -> Rejection:
        sub = row.submission()
        media = tuple(f.relpath for f in sub.media)
        owner = row.detail.get("owner")
        return cls(
            row.id,
            sub.manifest.relpath,
            media,
            (problem,),
            size=row.bytes_total,
            owner=owner if isinstance(owner, str) else None,
        )


class WaitForEarlier(Exception):
    """The manifest's earlier version is still being sent (by another node): look again later."""


class Outcomes:
    def __init__(
        self,
        journal: JournalPort,
        known: JournalKnown,
        clock: Clock,
        current: Current,
        alerts: Tells | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.journal, self.known, self.clock, self.current = journal, known, clock, current
        self.alerts, self.verifier = alerts, verifier

    # -- the tracker's decisions -----------------------------------------------------------

    def apply(
        self, watch: WatchConfig, decision: Decision, dispatch: Callable[[str], None]
    ) -> None:
        """Record what the tracker decided. A `Gone` must come only from a folder known to be
        there (the watch loop checks): an unmounted share is not a mass delete."""
        now = self.clock.now()
        if isinstance(decision, Waiting):
            detail: dict[str, Any] = {
                "missing": [str(p) for p in decision.missing],
                "unsettled": [str(p) for p in decision.unsettled],
                "conflicts": [str(p) for p in decision.conflicts],
                "owner": owner_of(watch.path, decision.manifest),
            }
            if self.journal.record_pending(
                decision.submission_id, watch.name, decision.manifest, now, detail
            ):
                log.info(
                    "manifest seen, waiting for files",
                    submission_id=decision.submission_id,
                    watch=watch.name,
                    state=str(State.PENDING),
                    manifest=str(decision.manifest),
                    **detail,
                )
        elif isinstance(decision, Gone):
            if decision.why is GoneWhy.LEFT:
                self.manifest_left(decision.submission_id)
                return
            self.journal.forget_pending(decision.submission_id)
            log.info(
                GONE_EVENTS[decision.why],
                submission_id=decision.submission_id,
                watch=watch.name,
                manifest=str(decision.manifest),
            )
        elif isinstance(decision, Failed):
            rejection = Rejection(
                decision.submission_id,
                decision.manifest,
                decision.present,
                decision.problems,
                decision.format,
                new=True,
                owner=owner_of(watch.path, decision.manifest),
            )
            self.reject(watch, rejection)
        elif isinstance(decision, Ready):
            assets = [{"guid": g, "title": t} for g, t in decision.assets]
            sub = decision.submission
            owner = owner_of(watch.path, sub.manifest.relpath, sub.manifest.identity)
            ready_detail: dict[str, object] = {"assets": assets, "owner": owner}
            if decision.priority is not None:
                ready_detail["priority"] = decision.priority  # the dispatcher decides if it counts
            made = self.journal.record_ready(sub, now, ready_detail)
            if made is False and self.journal.state_of(sub.id) in (None, State.PENDING):
                # A fleet: an earlier version of this manifest, made ready by another node,
                # is still on its way; this one goes after it, as a new submission.
                raise WaitForEarlier(sub.id)
            log.info(
                "submission ready",
                submission_id=sub.id,
                watch=watch.name,
                state=str(State.READY),
                files=len(sub.files),
                bytes=sub.total_bytes,
            )
            dispatch(sub.id)

    def manifest_left(self, sid: str) -> None:
        """A delivered or failed submission's manifest is gone from the drop folder (we
        archived, deleted or quarantined it, or the editor took it): the same bytes dropped
        again are a new submission (see `known`). A held one stays held for its operator."""
        if self.journal.state_of(sid) in (State.COMPLETE, State.FAILED):
            self.journal.mark_manifest_removed(sid)

    # -- the one way to fail ---------------------------------------------------------------

    def reject(
        self, watch: WatchConfig, rejection: Rejection, journal: JournalPort | None = None
    ) -> None:
        """Record `failed`, then move the files to failed_dir with the report, tell people
        and log it. A move that fails leaves the files where they are, and is still told.
        `journal`: a fleet's delivery writes through its claim (service.fleet), so a node
        that lost it cannot fail, and quarantine, what another node is sending."""
        r, now = rejection, self.clock.now()
        first = r.problems[0]
        if r.new:
            decided = self.journal.record_failed(
                r.submission_id, watch.name, r.manifest, r.problems, now, r.format, r.owner
            )
            if decided is False:  # a fleet: another node decided it first and acts on it
                log.info("decided by another node", submission_id=r.submission_id)
                return
        else:
            (journal or self.journal).transition(
                r.submission_id,
                State.FAILED,
                now,
                note=first.message,
                error_code=first.code,
                error_message=first.message,
                problems=r.problems,
            )
        report: Path | None = None
        try:
            folder = postprocess.quarantine(
                r.submission_id,
                watch.name,
                watch.path,
                r.manifest,
                r.present,
                r.problems,
                watch.failed_dir,
                now,
                permissions=watch.permissions,
            )
            report = folder / postprocess.REPORT_TXT
        except Exception as err:  # a quarantine fault leaves the files; it never stops a watch
            log.exception(
                "cannot quarantine: files left in place",
                submission_id=r.submission_id,
                watch=watch.name,
                error=str(err),
            )
        if self.alerts is not None:
            self.alerts.failed(r.submission_id, watch.name, first.message, _str(report), r.owner)
        files = len(r.present) + 1
        log_ended(r.submission_id, watch.name, State.FAILED, first, files, r.size, report)

    # -- after a delivery ------------------------------------------------------------------

    def delivered(
        self, watch: WatchConfig, row: Row, ended: Ended, journal: JournalPort | None = None
    ) -> None:
        """Act on how a delivery ended (it has committed complete or held already);
        `journal`: the one the delivery wrote through (a fleet's claim)."""
        if isinstance(ended, Refused):
            self.reject(watch, Rejection.of_row(row, ended.problem), journal)
        elif isinstance(ended, Held):
            files, size = len(row.files), row.bytes_total
            log_ended(row.id, watch.name, State.HELD, ended.problem, files, size, None)
        else:
            self.finish(watch, row)
            self._verify(watch, row.id)
            if self.alerts is not None:
                summary = f"{len(row.files)} files, {row.bytes_total} bytes"
                self.alerts.completed(row.id, row.watch, summary)
        self._after_end(watch, row.id)

    def finish(self, watch: WatchConfig, row: Row) -> None:
        """Archive/delete after `complete` is committed; safe to repeat after a crash."""
        sub, now = row.submission(), self.clock.now()
        done = postprocess.after_success(
            sub, watch.path, watch.after_success, watch.archive_dir, now, watch.permissions
        )
        note = f"{watch.after_success}: {len(done.moved) + len(done.deleted)} files"
        if done.kept and watch.after_success != "keep":
            note += f"; left in place (changed since sent): {', '.join(done.kept)}"
        self.journal.mark_postprocessed(sub.id, now, note)
        receipt = done.destination / postprocess.RECEIPT_JSON if done.destination else None
        files, size = len(sub.files), sub.total_bytes
        log_ended(sub.id, watch.name, State.COMPLETE, None, files, size, receipt, note)

    def _after_end(self, watch: WatchConfig, sid: str) -> None:
        """What the journal must know once a submission ended and its files were dealt with:
        whether its manifest left the drop folder, and (kept) a proof that survives it."""
        final = self.journal.get(sid)
        if final is None or final.state not in (State.COMPLETE, State.FAILED):
            return
        pinned = final.submission().manifest
        found = beneath.look(watch.path, pinned.relpath)
        if found.identity is None or not pinned.identity.same_as(found.identity):
            self.manifest_left(sid)
        elif final.state is State.COMPLETE and watch.after_success == "keep":
            self.known.remember_kept(sid)

    def _verify(self, watch: WatchConfig, sid: str) -> None:
        """Hand a completed submission to the Backlot check, if its target asks for one."""
        spec = self.current().verify(watch)
        row = self.journal.get(sid)
        if spec is None or row is None or self.verifier is None:
            return
        keys = [AssetKey(a.get("guid"), a.get("title")) for a in row.detail.get("assets", [])]
        self.verifier.add(sid, spec.backlot, keys, spec.timeout, spec.poll_interval)


def log_ended(
    sid: str,
    watch: str,
    state: State,
    problem: Problem | None,
    files: int,
    size: int | None,
    report: Path | None,
    reason: str | None = None,
) -> None:
    """The one outcome event: the same keys for every end."""
    level = {State.COMPLETE: log.info, State.HELD: log.warning}.get(state, log.error)
    level(
        f"submission {state}",
        submission_id=sid,
        watch=watch,
        state=str(state),
        code=problem.code if problem else None,
        reason=problem.message if problem else reason,
        files=files,
        bytes=size,
        report=_str(report),
    )


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
