"""What `hotfolder status` prints: a table with a header, or one submission in detail.

What a submission looks like (its files, size, progress, tries, note, a failure's reason)
is `state.summary`, which the web window reads too, so the two never disagree. Only what is
known is shown: a pending row has no file list yet, a row that failed at intake never had
files or a try, and neither shows a made-up `0 files 0 B` or `tries 1`.

A fleet's journal (issue 13) holds every node's submissions: then a NODE column (and a `node`
line, and a `node` key in --json) says which workstation holds or delivered each one. A single
workstation's output has none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hotfolder.state import summary
from hotfolder.state.journal import Row
from hotfolder.state.summary import Speed

COLUMNS = ("ID", "WATCH", "STATE", "FILES", "SIZE", "PROGRESS", "AGE", "TRIES", "NOTE")
#: A fleet's table: which node holds or delivered each submission, after its watch.
FLEET_COLUMNS = (*COLUMNS[:2], "NODE", *COLUMNS[2:])
#: What a row shows in NODE when no node holds or delivered it (waiting, or failed at intake).
NO_NODE = "-"


def table(
    rows: Sequence[Row],
    now: datetime,
    speeds: Mapping[str, Speed],
    journal: Path | str,
    fleet: bool = False,
) -> str:
    if not rows:
        return f"no submissions yet in {journal}\n"
    columns = FLEET_COLUMNS if fleet else COLUMNS
    cells = [_cells(r, now, speeds.get(r.id), fleet) for r in rows]
    widths = [max(len(c[i]) for c in (columns, *cells)) for i in range(len(columns) - 1)]
    lines = []
    for c in (columns, *cells):
        fixed = "  ".join(
            text.rjust(width)
            if columns[i] in ("FILES", "SIZE", "AGE", "TRIES")
            else text.ljust(width)
            for i, (text, width) in enumerate(zip(c, widths, strict=False))
        )
        lines.append(f"{fixed}  {c[-1]}".rstrip())
    return "\n".join(lines) + "\n"


def _cells(r: Row, now: datetime, speed: Speed | None, fleet: bool) -> tuple[str, ...]:
    return (
        r.id,
        r.watch,
        *((r.node or NO_NODE,) if fleet else ()),
        str(r.state),
        summary.files(r),
        summary.total(r),
        summary.progress(r, speed),
        summary.age(now, r.created_at),
        summary.tries(r),
        summary.note(r),
    )


def detail(
    r: Row,
    now: datetime,
    speed: Speed | None,
    history: list[tuple[str, str, str]],
    fleet: bool = False,
) -> str:
    lines = [
        f"{r.id}  ({r.watch}, {r.state}, {age(now, r.created_at)} old)",
        f"  manifest  {r.manifest}",
    ]
    if fleet:
        lines.append(f"  node      {r.node or 'none (nobody holds it)'}")
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


def json_row(r: Row, speed: Speed | None, fleet: bool = False) -> dict[str, Any]:
    """One submission for --json: the page's words, and in a fleet its `node` (null: none)."""
    shown = summary.as_json(r, speed)
    return {**shown, "node": r.node} if fleet else shown


#: Shared with the web window (hotfolder.state.summary); kept here under their old names.
as_json = summary.as_json
bar = summary.bar
size = summary.size
age = summary.age
