"""What `hotfolder status` prints: a table with a header, or one submission in detail.

Only what is known is shown. A pending row has no file list yet (the journal keeps the
names it still waits for); a row that failed at intake never had files or a try. Those
show what the journal does know, never a made-up `0 files 0 B` or `tries 1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hotfolder.model import IN_FLIGHT, State
from hotfolder.state.journal import Row

#: bytes per second and seconds left, for a row being sent (None when not known)
Speed = tuple[float | None, float | None]

COLUMNS = ("ID", "WATCH", "STATE", "FILES", "SIZE", "PROGRESS", "AGE", "TRIES", "NOTE")


def table(rows: Sequence[Row], now: datetime, speeds: Mapping[str, Speed], journal: Path) -> str:
    if not rows:
        return f"no submissions yet in {journal}\n"
    cells = [_cells(r, now, speeds.get(r.id)) for r in rows]
    widths = [max(len(c[i]) for c in (COLUMNS, *cells)) for i in range(len(COLUMNS) - 1)]
    lines = []
    for c in (COLUMNS, *cells):
        fixed = "  ".join(
            text.rjust(width)
            if COLUMNS[i] in ("FILES", "SIZE", "AGE", "TRIES")
            else text.ljust(width)
            for i, (text, width) in enumerate(zip(c, widths, strict=False))
        )
        lines.append(f"{fixed}  {c[-1]}".rstrip())
    return "\n".join(lines) + "\n"


def _cells(r: Row, now: datetime, speed: Speed | None) -> tuple[str, ...]:
    return (
        r.id,
        r.watch,
        str(r.state),
        _files(r),
        size(r.bytes_total) if r.files else "-",
        _progress(r, speed),
        age(now, r.created_at),
        _tries(r),
        _note(r),
    )


def _files(r: Row) -> str:
    if r.files:
        return str(len(r.files))
    if r.state is State.PENDING:
        waiting = len(r.detail.get("missing", [])) + len(r.detail.get("unsettled", []))
        return f"{waiting} waited for" if waiting else "-"
    return "-"  # failed at intake: the manifest never became a list of files


def _tries(r: Row) -> str:
    """Tries that failed, plus the one under way; '-' for a row never sent."""
    tries = r.attempts + (1 if r.state in IN_FLIGHT else 0)
    if not r.files:
        return "-"
    return str(tries)


def _progress(r: Row, speed: Speed | None) -> str:
    if r.state in IN_FLIGHT:
        rate, eta = speed or (None, None)
        pace = f" {size(int(rate))}/s eta {eta:.0f}s" if rate and eta is not None else ""
        return bar(r.bytes_done, r.bytes_total) + pace
    return ""


def _note(r: Row) -> str:
    parts = []
    if r.state is State.PENDING:
        for key, word in (("missing", "missing"), ("unsettled", "still changing")):
            names = r.detail.get(key, [])
            if names:
                shown = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
                parts.append(f"{word}: {shown}")
    if not r.files and r.state is not State.PENDING:
        parts.append(f"manifest {r.manifest}")
    verify = r.detail.get("verify", {})
    if verify.get("result"):
        why = verify.get("error")
        parts.append(f"backlot: {verify['result']}" + (f" ({why})" if why else ""))
    if r.error_code:
        parts.append(f"last error {r.error_code}: {r.error_message}")
    return "; ".join(parts)


def detail(r: Row, now: datetime, speed: Speed | None, history: list[tuple[str, str, str]]) -> str:
    lines = [
        f"{r.id}  ({r.watch}, {r.state}, {age(now, r.created_at)} old)",
        f"  manifest  {r.manifest}",
    ]
    if r.files:
        lines.append(f"  files     {len(r.files)}, {size(r.bytes_total)}")
        lines += [f"    {f['relpath']}  {size(int(f['size']))}" for f in r.files]
    progress = _progress(r, speed)
    if progress:
        lines.append(f"  progress  {progress}")
    note = _note(r)
    if note:
        lines.append(f"  note      {note}")
    for problem in r.detail.get("problems", []):
        lines.append(f"  problem   {problem.get('code')}: {problem.get('message')}")
    if history:
        lines.append("  history")
        lines += [f"    {at}  {state:<16} {text}" for at, state, text in history]
    return "\n".join(lines) + "\n"


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
    fraction = min(done / total, 1.0) if total else 0.0
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}%"


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
