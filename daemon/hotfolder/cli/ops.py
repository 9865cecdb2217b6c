"""Operator actions on the journal: retry, hold, forget. Each is logged; a running daemon
picks the change up from the journal within a second."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path, PurePosixPath

import structlog

from hotfolder.after import postprocess
from hotfolder.config.settings import Config
from hotfolder.model import IN_FLIGHT, State
from hotfolder.state.journal import Row
from hotfolder.state.port import JournalPort

log = structlog.get_logger()


class OperatorError(Exception):
    """The action does not apply to the submission as it is now."""


def retry(journal: JournalPort, cfg: Config, sid: str, now: datetime) -> str:
    row = _row(journal, sid)
    if row.state is State.HELD:
        _no_other_version_on_its_way(journal, row)
        # The operator checked the destination: old markers and receipts decide nothing now.
        journal.forget_evidence(sid)
        journal.transition(sid, State.READY, now, note="released by an operator")
        log.info("operator: retry", submission_id=sid, watch=row.watch, state=str(State.READY))
        return f"{sid}: released; it is sent again (resume skips what already arrived)"
    if row.state is State.FAILED:
        moves = _planned_moves(row, cfg)
        # Forget first: a daemon that sees the files come back must not find the old
        # verdict and leave them be.
        journal.forget(sid)
        moved = _move_back(moves, cfg, row)
        log.info("operator: retry", submission_id=sid, watch=row.watch, files=len(moved))
        return (
            f"{sid}: {len(moved)} files moved back to the drop folder; the daemon takes "
            "them as a new drop"
        )
    raise OperatorError(f"{sid} is {row.state}: only held or failed submissions can be retried")


def _no_other_version_on_its_way(journal: JournalPort, row: Row) -> None:
    """One manifest file, one submission on its way: a held version released beside another
    one (the editor re-saved the manifest; waiting for its files counts) would send the same
    media twice."""
    on_its_way = frozenset({State.PENDING, State.READY, *IN_FLIGHT})
    for other in journal.rows(on_its_way, watch=row.watch, limit=-1):
        if other.id != row.id and other.manifest == row.manifest:
            raise OperatorError(
                f"{row.id}: another version of {row.manifest}, {other.id}, is "
                f"{other.state}; retry this one once that has ended, or forget it"
            )


def hold(journal: JournalPort, sid: str, now: datetime) -> str:
    row = _row(journal, sid)
    if row.state not in (State.PENDING, State.READY):
        raise OperatorError(f"{sid} is {row.state}: only pending or ready submissions can be held")
    journal.transition(
        sid,
        State.HELD,
        now,
        note="held by an operator",
        error_code="held",
        error_message="held by an operator",
    )
    log.info("operator: hold", submission_id=sid, watch=row.watch, state=str(State.HELD))
    return f"{sid}: held; release it with: hotfolder retry {sid}"


def forget(journal: JournalPort, sid: str) -> str:
    row = _row(journal, sid)
    journal.forget(sid)
    log.info("operator: forget", submission_id=sid, watch=row.watch, state=str(row.state))
    return f"{sid}: forgotten"


def _row(journal: JournalPort, sid: str) -> Row:
    row = journal.get(sid)
    if row is None:
        raise OperatorError(f"no submission {sid!r} in the journal (see: hotfolder status)")
    return row


def _planned_moves(row: Row, cfg: Config) -> list[tuple[Path, Path]]:
    watch = next((w for w in cfg.watches if w.name == row.watch), None)
    if watch is None:
        raise OperatorError(f"watch {row.watch!r} is no longer configured")
    folder = watch.failed_dir / row.id
    if not folder.is_dir():
        raise OperatorError(f"{folder} is gone: copy the files back into the drop folder by hand")
    base = watch.path / PurePosixPath(row.manifest).parent
    moved = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.endswith(".partial") or (
            path.parent == folder and path.name in (postprocess.REPORT_TXT, postprocess.REPORT_JSON)
        ):
            continue  # the reports, or one the daemon is writing right now
        dest = base / path.relative_to(folder)
        if dest.exists():
            raise OperatorError(f"{dest} exists in the drop folder already; nothing was moved")
        moved.append((path, dest))
    return moved


def _move_back(moves: list[tuple[Path, Path]], cfg: Config, row: Row) -> list[str]:
    for path, dest in moves:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, dest)
    watch = next(w for w in cfg.watches if w.name == row.watch)
    shutil.rmtree(watch.failed_dir / row.id, ignore_errors=True)
    return [str(dest) for _, dest in moves]


class AmbiguousId(OperatorError):
    """A prefix that more than one submission ID starts with."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        shown = "\n  ".join(candidates[:20])
        more = f"\n  ... and {len(candidates) - 20} more" if len(candidates) > 20 else ""
        super().__init__(
            f"{prefix!r} could be any of {len(candidates)} submissions; type more of it:"
            f"\n  {shown}{more}"
        )
        self.candidates = candidates


def match_id(journal: JournalPort, prefix: str) -> str:
    """The one submission ID that is `prefix` or starts with it (as git takes a short hash).
    Raises AmbiguousId listing the candidates, or OperatorError when none matches."""
    if journal.get(prefix) is not None:
        return prefix
    candidates = sorted(r.id for r in journal.rows(limit=-1) if r.id.startswith(prefix))
    if not candidates:
        raise OperatorError(f"no submission {prefix!r} in the journal (see: hotfolder status)")
    if len(candidates) > 1:
        raise AmbiguousId(prefix, candidates)
    return candidates[0]
