"""The journal's intake records: a submission seen (pending), ready, or failed before it
started, each one transaction with its history line. The state machine's transitions and the
rest of the writes are `journal.Journal`, which is built on this."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from hotfolder.metrics import COUNTERS
from hotfolder.model import ManifestFormat, Problem, State, Submission
from hotfolder.state.journal_reads import JournalReads
from hotfolder.state.rows import cap, files_json, problems_detail


class JournalIntake(JournalReads):
    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Journal's own transaction

    def record_pending(
        self, sid: str, watch: str, manifest: PurePosixPath, now: datetime, detail: dict[str, Any]
    ) -> bool:
        """Note a submission that waits for files. True if it is new."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO submissions (id, watch, manifest, state, detail, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    watch,
                    str(manifest),
                    State.PENDING,
                    json.dumps(detail),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            if cur.rowcount:
                _log(db, sid, now, State.PENDING, "seen")
                _close_earlier(db, watch, manifest, sid)
                return True
            db.execute(
                "UPDATE submissions SET detail = ? WHERE id = ? AND state = ?",
                (json.dumps(detail), sid, State.PENDING),
            )
            return False

    def forget_pending(self, sid: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM submissions WHERE id = ? AND state = ?", (sid, State.PENDING))
            db.execute(
                "DELETE FROM history WHERE submission_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM submissions WHERE id = ?)",
                (sid, sid),
            )

    def record_ready(
        self, sub: Submission, now: datetime, detail: dict[str, Any] | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO submissions (id, watch, manifest, format, state, files, bytes_total,"
                " detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, files = excluded.files, "
                "format = excluded.format, bytes_total = excluded.bytes_total, "
                "updated_at = excluded.updated_at, detail = excluded.detail "
                "WHERE state = 'pending'",
                (
                    sub.id,
                    sub.watch,
                    str(sub.manifest.relpath),
                    sub.format,
                    State.READY,
                    json.dumps(files_json(sub)),
                    sub.total_bytes,
                    json.dumps(detail or {}),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            _log(db, sub.id, now, State.READY, f"{len(sub.files)} files, {sub.total_bytes} bytes")
            _close_earlier(db, sub.watch, sub.manifest.relpath, sub.id)
        COUNTERS.ready(sub.id)

    def record_failed(
        self,
        sid: str,
        watch: str,
        manifest: PurePosixPath,
        problems: tuple[Problem, ...],
        now: datetime,
        fmt: ManifestFormat | None = None,
        owner: str | None = None,
    ) -> None:
        """A submission that never got going: its manifest or its files broke a rule.
        `owner`: who dropped it (the manifest's owner), for the window and the editor's mail."""
        first = problems[0]
        detail: dict[str, Any] = problems_detail(problems)
        if owner is not None:
            detail["owner"] = owner
        with self._tx() as db:
            db.execute(
                "INSERT INTO submissions (id, watch, manifest, format, state, error_code, "
                "error_message, detail, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
                "error_code = excluded.error_code, error_message = excluded.error_message, "
                "detail = excluded.detail, updated_at = excluded.updated_at",
                (
                    sid,
                    watch,
                    str(manifest),
                    fmt,
                    State.FAILED,
                    first.code,
                    cap(first.message),
                    json.dumps(detail),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            _log(db, sid, now, State.FAILED, first.message)
            _close_earlier(db, watch, manifest, sid)
        COUNTERS.failed(watch, first.code)
        COUNTERS.ended(sid)


def _log(db: sqlite3.Connection, sid: str, now: datetime, state: State, note: str) -> None:
    db.execute(
        "INSERT INTO history (submission_id, at, state, note) VALUES (?, ?, ?, ?)",
        (sid, now.isoformat(), str(state), cap(note)),
    )


def _close_earlier(db: sqlite3.Connection, watch: str, manifest: PurePosixPath, sid: str) -> None:
    """Pending rows of the same manifest under another id: an earlier identity of the file
    (it was still being written), noted by a process killed before it looked again. Nobody
    else would ever close them; they would wait in `status` forever."""
    earlier = [
        r[0]
        for r in db.execute(
            "SELECT id FROM submissions WHERE watch = ? AND state = ? AND manifest = ? AND id <> ?",
            (watch, State.PENDING, str(manifest), sid),
        )
    ]
    for old in earlier:
        db.execute("DELETE FROM submissions WHERE id = ?", (old,))
        db.execute("DELETE FROM history WHERE submission_id = ?", (old,))
