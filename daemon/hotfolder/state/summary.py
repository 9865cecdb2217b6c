"""What a submission looks like to a person: one reading of a journal row, shared by
`hotfolder status` (the CLI) and the web window, so the two never disagree.

Only what is known is shown. A pending row has no file list yet (the journal keeps the names it
still waits for); a row that failed at intake never had files or a try. Those show what the
journal does know, never a made-up `0 files 0 B` or `tries 1`. A failure's reason and what to do
are REPORT.txt's own lines (`hotfolder.report.problem_lines`), from the problems the journal kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hotfolder import report
from hotfolder.model import IN_FLIGHT, Problem, State
from hotfolder.state.journal import Row

#: bytes per second and seconds left, for a row being sent (None when not known)
Speed = tuple[float | None, float | None]


def files(r: Row) -> str:
    if r.files:
        return str(len(r.files))
    if r.state is State.PENDING:
        waiting = len(r.detail.get("missing", [])) + len(r.detail.get("unsettled", []))
        return f"{waiting} waited for" if waiting else "-"
    return "-"  # failed at intake: the manifest never became a list of files


def total(r: Row) -> str:
    return size(r.bytes_total) if r.files else "-"


def tries(r: Row) -> str:
    """Tries that failed, plus the one under way; '-' for a row never sent."""
    if not r.files:
        return "-"
    return str(r.attempts + (1 if r.state in IN_FLIGHT else 0))


def fraction(r: Row) -> float | None:
    """How much of a submission being sent is at the target, 0..1; None if not sending."""
    if r.state not in IN_FLIGHT:
        return None
    return min(r.bytes_done / r.bytes_total, 1.0) if r.bytes_total else 0.0


def pace(speed: Speed | None) -> str:
    rate, eta = speed or (None, None)
    return f"{size(int(rate))}/s eta {eta:.0f}s" if rate and eta is not None else ""


def progress(r: Row, speed: Speed | None) -> str:
    done = fraction(r)
    if done is None:
        return ""
    shown = pace(speed)
    return bar(r.bytes_done, r.bytes_total) + (f" {shown}" if shown else "")


def waiting_for(r: Row) -> list[tuple[str, list[str]]]:
    """A pending row's names, by why it waits: [('missing', [...]), ('still changing', ...)]."""
    if r.state is not State.PENDING:
        return []
    found = []
    for key, word in (("missing", "missing"), ("unsettled", "still changing")):
        names = r.detail.get(key, [])
        if names:
            found.append((word, [str(n) for n in names]))
    return found


def backlot(r: Row) -> str:
    verify = r.detail.get("verify", {})
    if not verify.get("result"):
        return ""
    why = verify.get("error")
    return f"backlot: {verify['result']}" + (f" ({why})" if why else "")


def note(r: Row) -> str:
    parts = []
    for word, names in waiting_for(r):
        shown = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
        parts.append(f"{word}: {shown}")
    if not r.files and r.state is not State.PENDING:
        parts.append(f"manifest {r.manifest}")
    checked = backlot(r)
    if checked:
        parts.append(checked)
    if r.error_code:
        parts.append(f"last error {r.error_code}: {r.error_message}")
    return "; ".join(parts)


def problems(r: Row) -> tuple[Problem, ...]:
    """The problems a failed submission's REPORT.txt lists, as the journal kept them (at most
    journal.MAX_PROBLEMS); a row written before problems were kept has its last error only."""
    kept = r.detail.get("problems")
    if kept:
        return tuple(
            Problem(
                str(p.get("code", "")),
                str(p.get("message", "")),
                str(p.get("hint", "")),
                p.get("path"),
                p.get("line"),
            )
            for p in kept
        )
    if r.state is State.FAILED and r.error_code:
        return (Problem(r.error_code, r.error_message or ""),)
    return ()


def reason(r: Row) -> list[str]:
    """A failed submission's 'What is wrong' lines, exactly as REPORT.txt words them."""
    if r.state is not State.FAILED:
        return []
    return report.problem_lines(problems(r))


def as_json(r: Row, speed: Speed | None) -> dict[str, Any]:
    rate, eta = speed or (None, None)
    return {
        "id": r.id,
        "watch": r.watch,
        "state": str(r.state),
        "manifest": r.manifest,
        # null, not 0, while the file list is not known (pending, failed at intake)
        "files": len(r.files) if r.files else None,
        "bytes_total": r.bytes_total if r.files else None,
        "bytes_done": r.bytes_done,
        "rate_bytes_s": rate,
        "eta_s": eta,
        "attempts": r.attempts,
        "missing": r.detail.get("missing", []),
        "unsettled": r.detail.get("unsettled", []),
        "error_code": r.error_code,
        "error": r.error_message,
        "verify": r.detail.get("verify"),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def bar(done: int, total: int, width: int = 20) -> str:
    part = min(done / total, 1.0) if total else 0.0
    filled = round(part * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {part * 100:3.0f}%"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def age(now: datetime, created: str) -> str:
    seconds = (now - datetime.fromisoformat(created)).total_seconds()
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit}"
    return f"{seconds:.0f}s"
