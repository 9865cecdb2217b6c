"""What `hotfolder status` prints: a table with a header, or one submission in detail.

What a submission looks like (its files, size, progress, tries, note, a failure's reason)
is `state.summary`, which the web window reads too, so the two never disagree. Only what is
known is shown: a pending row has no file list yet, a row that failed at intake never had
files or a try, and neither shows a made-up `0 files 0 B` or `tries 1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from hotfolder.state import summary
from hotfolder.state.journal import Row
from hotfolder.state.summary import Speed

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
        summary.files(r),
        summary.total(r),
        summary.progress(r, speed),
        summary.age(now, r.created_at),
        summary.tries(r),
        summary.note(r),
    )


def detail(r: Row, now: datetime, speed: Speed | None, history: list[tuple[str, str, str]]) -> str:
    lines = [
        f"{r.id}  ({r.watch}, {r.state}, {age(now, r.created_at)} old)",
        f"  manifest  {r.manifest}",
    ]
    if r.files:
        lines.append(f"  files     {len(r.files)}, {size(r.bytes_total)}")
        lines += [f"    {f['relpath']}  {size(int(f['size']))}" for f in r.files]
    progress = summary.progress(r, speed)
    if progress:
        lines.append(f"  progress  {progress}")
    note = summary.note(r)
    if note:
        lines.append(f"  note      {note}")
    lines += [f"  {line}" for line in summary.reason(r)]  # REPORT.txt's words, as the page
    if history:
        lines.append("  history")
        lines += [f"    {at}  {state:<16} {text}" for at, state, text in history]
    return "\n".join(lines) + "\n"


#: Shared with the web window (hotfolder.state.summary); kept here under their old names.
as_json = summary.as_json
bar = summary.bar
size = summary.size
age = summary.age
