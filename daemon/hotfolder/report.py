"""What an editor reads when a submission fails: REPORT.txt, and report.json for scripts.

A leaf like `model` (it imports nothing else from the package), because every stage quotes
untrusted text: `excerpt` is how a file name, a manifest's text or a server's words get into a
message, a report or a log line, escaped and short, so a report can never carry a password file,
a terminal escape or a NUL. `render` and `write` turn a typed `Report` into the two files, each
capped however many problems a manifest has (a 100k-row CSV makes a short report, not 1.4 MB).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path, PurePosixPath

from hotfolder.model import Problem

REPORT_TXT = "REPORT.txt"
REPORT_JSON = "report.json"

#: REPORT.txt lists this many problems, then summarises the rest by code.
LISTED_PROBLEMS = 20
#: ... and this many file names per list.
LISTED_FILES = 20
#: A hard ceiling on REPORT.txt in bytes, whatever the texts inside it.
MAX_TEXT_BYTES = 20_000
#: report.json holds more, but is capped too.
JSON_PROBLEMS = 200
JSON_FILES = 1000
JSON_TEXT = 1000

MESSAGE_CHARS = 240  # a problem's message or hint in REPORT.txt
PATH_CHARS = 160  # a path or name in REPORT.txt

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0", "\x1b": "\\e"}
ELLIPSIS = "\u2026"


def excerpt(text: str, limit: int = 60) -> str:
    """`text` made safe to quote: every control or invisible character escaped (newline as
    \\n, NUL as \\0, ESC as \\e, others as \\xNN or \\uNNNN; a byte that was not UTF-8 in a
    file name, kept by surrogateescape, as \\xNN), and at most `limit` characters with an
    ellipsis when cut. An escape is never cut in half."""
    pieces: list[str] = []
    size = 0
    for char in text:
        piece = _escape(char)
        if size + len(piece) > limit:
            while pieces and size + len(ELLIPSIS) > limit:
                size -= len(pieces.pop())
            return "".join(pieces) + ELLIPSIS
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    # Python's "printable" leaves out controls, format characters (bidi overrides, zero
    # width), every space but ' ' (a no-break space looks like one), line and paragraph
    # separators, surrogates and unassigned code points: what could hide, reorder or break
    # text on a terminal or a page.
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte the name really had
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """Everything an editor needs to fix a failed submission, and where everything is."""

    submission: str
    watch: str
    drop_folder: Path  # the watch folder
    manifest: PurePosixPath  # relative to the drop folder
    failed_at: datetime  # aware; shown in the workstation's local time
    problems: tuple[Problem, ...]  # every problem at once: rules, missing files, transfer
    failed_folder: Path  # <failed_dir>/<id>/: where `moved` are now
    moved: tuple[PurePosixPath, ...] = ()  # relative to the drop folder, as they were
    left_in_drop_folder: tuple[PurePosixPath, ...] = ()  # not moved (links, changed, special)


def render(report: Report, tz: tzinfo | None = None) -> str:
    """REPORT.txt: plain words, every problem grouped by kind, at most MAX_TEXT_BYTES.

    `tz` is for tests; by default the workstation's own zone, named (e.g. CEST)."""
    lines = [
        f"Submission {excerpt(report.submission, PATH_CHARS)} was NOT sent.",
        "",
        f"Manifest:      {excerpt(str(report.manifest), PATH_CHARS)}",
        f"Drop folder:   {excerpt(str(report.drop_folder), PATH_CHARS)}"
        f" (watch '{excerpt(report.watch)}')",
        f"Failed folder: {excerpt(str(report.failed_folder), PATH_CHARS)}",
        f"When:          {local_time(report.failed_at, tz)}",
        "",
        *_problem_lines(report.problems),
        "",
        f"Moved into the failed folder, unchanged ({len(report.moved):,}):",
        *_file_lines(report.moved),
    ]
    if report.left_in_drop_folder:
        lines += [
            "",
            f"Left in the drop folder ({len(report.left_in_drop_folder):,}):",
            *_file_lines(report.left_in_drop_folder),
        ]
    lines += [
        "",
        "Nothing was deleted. When it is fixed, copy the files back into the drop folder,",
        "manifest last (an administrator can do this with: hotfolder retry "
        f"{excerpt(report.submission, PATH_CHARS)}).",
    ]
    return _cap_bytes("\n".join(lines) + "\n", MAX_TEXT_BYTES)


def local_time(when: datetime, tz: tzinfo | None = None) -> str:
    """'2024-05-01 16:03:12 CEST' in the workstation's zone (or `tz`)."""
    at = when.astimezone(tz)
    return f"{at:%Y-%m-%d %H:%M:%S} {at.tzname() or at.strftime('%z')}"


def problem_lines(problems: tuple[Problem, ...]) -> list[str]:
    """REPORT.txt's 'What is wrong' section, line by line: also what `hotfolder status` and the
    web window show for a failure, so the three never word it differently."""
    return _problem_lines(problems)


def _problem_lines(problems: tuple[Problem, ...]) -> list[str]:
    if not problems:
        return ["What is wrong: no reason was recorded (see the daemon's log)."]
    groups: dict[str, list[Problem]] = {}
    for p in problems:
        groups.setdefault(p.code, []).append(p)
    shown = _allot([len(g) for g in groups.values()], LISTED_PROBLEMS)
    count = f"{len(problems):,} problem{'s' if len(problems) != 1 else ''}"
    lines = [f"What is wrong ({count}):"]
    number = 0
    for (code, group), n in zip(groups.items(), shown, strict=True):
        lines.append(f"  [{excerpt(code)}] ({len(group):,})")
        last_hint = None
        for p in group[:n]:
            number += 1
            where = f" (line {p.line})" if p.line else ""
            lines.append(f"  {number}. {excerpt(p.message, MESSAGE_CHARS)}{where}")
            if p.hint and p.hint != last_hint:
                lines.append(f"     What to do: {excerpt(p.hint, MESSAGE_CHARS)}")
            last_hint = p.hint
        if len(group) > n:
            lines.append(f"     ... and {len(group) - n:,} more of the same kind ({excerpt(code)})")
    return lines


def _allot(sizes: list[int], budget: int) -> list[int]:
    """How many of each group to list: round robin, so one big group cannot hide the others."""
    shown = [0] * len(sizes)
    while budget > 0 and any(s < n for s, n in zip(shown, sizes, strict=True)):
        for i, n in enumerate(sizes):
            if shown[i] < n and budget > 0:
                shown[i] += 1
                budget -= 1
    return shown


def _file_lines(files: tuple[PurePosixPath, ...]) -> list[str]:
    lines = [f"  - {excerpt(str(f), PATH_CHARS)}" for f in files[:LISTED_FILES]]
    if len(files) > LISTED_FILES:
        lines.append(f"  ... and {len(files) - LISTED_FILES:,} more (see {REPORT_JSON})")
    return lines or ["  (none)"]


def _cap_bytes(text: str, limit: int) -> str:
    """The last guard: whole lines up to `limit` bytes, and a line saying it was cut."""
    if len(text.encode()) <= limit:
        return text
    note = f"... the report was cut at {limit:,} bytes; {REPORT_JSON} has more.\n"
    kept, size = [], len(note.encode())
    for line in text.splitlines(keepends=True):
        size += len(line.encode())
        if size > limit:
            break
        kept.append(line)
    return "".join(kept) + note


def to_json(report: Report) -> dict[str, object]:
    """report.json: the same facts for scripts, exact strings (JSON escapes them) but capped:
    the first JSON_PROBLEMS problems, and counts by code for all of them."""
    problems = report.problems
    return {
        "submission": report.submission,
        "watch": report.watch,
        "drop_folder": _cut(str(report.drop_folder)),
        "manifest": _cut(str(report.manifest)),
        "failed_at": report.failed_at.isoformat(),
        "failed_folder": _cut(str(report.failed_folder)),
        "problems": [
            {
                "code": p.code,
                "message": _cut(p.message),
                "hint": _cut(p.hint),
                "path": _cut(p.path) if p.path is not None else None,
                "line": p.line,
            }
            for p in problems[:JSON_PROBLEMS]
        ],
        "problems_total": len(problems),
        "problems_by_code": dict(Counter(p.code for p in problems)),
        "files": [_cut(str(f)) for f in report.moved[:JSON_FILES]],
        "files_total": len(report.moved),
        "left_in_drop_folder": [_cut(str(f)) for f in report.left_in_drop_folder[:JSON_FILES]],
        "left_in_drop_folder_total": len(report.left_in_drop_folder),
    }


def _cut(text: str) -> str:
    return text if len(text) <= JSON_TEXT else text[: JSON_TEXT - 1] + ELLIPSIS


def write(folder: Path, report: Report) -> Path:
    """Write report.json, then REPORT.txt, each atomically (a reader never sees half a
    report), into `folder`; return REPORT.txt's path."""
    folder.mkdir(parents=True, exist_ok=True)
    # ensure_ascii: a file name's undecodable bytes (lone surrogates) cannot fail the write.
    _replace(folder / REPORT_JSON, json.dumps(to_json(report), indent=2, sort_keys=True) + "\n")
    txt = folder / REPORT_TXT
    _replace(txt, render(report))
    return txt


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
