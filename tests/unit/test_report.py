"""REPORT.txt and report.json: every problem at once, short, safe to read (issue 16, item 12)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotfolder import report
from hotfolder.model import Problem

WHEN = datetime(2024, 7, 1, 12, 0, 5, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def make(
    problems: Sequence[Problem], moved: Sequence[str] = (), left: Sequence[str] = ()
) -> report.Report:
    return report.Report(
        submission="ep105-0123456789",
        watch="ooyala",
        drop_folder=Path("/srv/dropbox/ooyala"),
        manifest=PurePosixPath("show/ep105.xml"),
        failed_at=WHEN,
        problems=tuple(problems),
        failed_folder=Path("/srv/dropbox/failed/ep105-0123456789"),
        moved=tuple(PurePosixPath(m) for m in moved),
        left_in_drop_folder=tuple(PurePosixPath(m) for m in left),
    )


def missing(i: int) -> Problem:
    return Problem("missing-file", f"'ep{i}.mp4' never arrived", "copy it in", f"ep{i}.mp4", i)


AMPERSAND = Problem(
    "bad-file-name", "'rock&roll.jpg' contains '&'", "rename it", "rock&roll.jpg", 7
)


# -- excerpt -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("clip.mp4", 60, "clip.mp4"),
        ("a\nb", 60, "a\\nb"),
        ("a\x00b", 60, "a\\0b"),
        ("\x1b[2Jx", 60, "\\e[2Jx"),
        ("\u202egpj.exe", 60, "\\u202egpj.exe"),  # a bidi override cannot reorder the text
        ("no\u00a0break", 60, "no\\xa0break"),  # looks like a space, is not one
        ("caf\udce9.mp4", 60, "caf\\xe9.mp4"),  # a Latin-1 byte kept by surrogateescape
        ("x" * 61, 60, "x" * 59 + "\u2026"),
        ("x" * 60, 60, "x" * 60),
        ("ab\ncd", 4, "ab\u2026"),  # an escape is never cut in half
    ],
)
def test_excerpt_escapes_and_caps(text: str, limit: int, expected: str) -> None:
    assert report.excerpt(text, limit) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(1, 120))
def test_an_excerpt_is_always_short_printable_and_writable(text: str, limit: int) -> None:
    out = report.excerpt(text, limit)
    assert len(out) <= limit
    assert out.isprintable()
    out.encode("utf-8")  # no lone surrogate left to fail a write
    if text.isprintable() and len(text) <= limit:
        assert out == text


# -- REPORT.txt --------------------------------------------------------------------------------


def test_rule_failures_and_missing_files_are_listed_together_grouped_by_kind() -> None:
    text = report.render(make([missing(1), AMPERSAND, missing(2)]), PARIS)
    assert "What is wrong (3 problems):" in text
    assert text.index("[missing-file] (2)") < text.index("'ep1.mp4' never arrived (line 1)")
    assert text.index("'ep2.mp4' never arrived") < text.index("[bad-file-name] (1)")
    assert "'rock&roll.jpg' contains '&' (line 7)" in text
    assert text.count("What to do: copy it in") == 1  # one hint for a kind, not one per file


def test_where_everything_is_and_what_was_left_behind() -> None:
    text = report.render(
        make([AMPERSAND], moved=["show/ep105.xml", "show/a.mov"], left=["show/lnk"]), PARIS
    )
    assert "Drop folder:   /srv/dropbox/ooyala (watch 'ooyala')" in text
    assert "Failed folder: /srv/dropbox/failed/ep105-0123456789" in text
    assert "Manifest:      show/ep105.xml" in text
    moved = text.index("Moved into the failed folder, unchanged (2):")
    left = text.index("Left in the drop folder (1):")
    assert moved < text.index("  - show/a.mov") < left < text.index("  - show/lnk")


def test_the_time_is_the_workstations_with_its_zone_name() -> None:
    assert "When:          2024-07-01 14:00:05 CEST" in report.render(make([AMPERSAND]), PARIS)
    assert "+00:00" not in report.render(make([AMPERSAND]), PARIS)


@pytest.fixture
def new_york() -> Iterator[None]:
    """The process's local zone set to New York, as a workstation there would have it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("new_york")
def test_by_default_the_time_is_in_the_local_zone() -> None:
    assert "When:          2024-07-01 08:00:05 EDT" in report.render(make([AMPERSAND]))


def test_a_huge_failure_makes_a_short_report_that_names_every_kind() -> None:
    problems = [missing(i) for i in range(100_000)]
    problems.insert(50_000, AMPERSAND)  # one rule failure among 100k missing files
    files = [f"show/clip{i}.mov" for i in range(100_000)]
    text = report.render(make(problems, moved=files, left=files[:21]), PARIS)
    assert len(text.encode()) <= report.MAX_TEXT_BYTES
    assert "What is wrong (100,001 problems):" in text
    assert "'rock&roll.jpg' contains '&'" in text, "a big group must not hide the others"
    assert "... and 99,981 more of the same kind (missing-file)" in text
    assert text.count(" never arrived") == 19
    assert "... and 99,980 more (see report.json)" in text
    assert "... and 1 more (see report.json)" in text
    assert text.rstrip().endswith("hotfolder retry ep105-0123456789).")


def test_long_texts_are_cut_and_the_report_still_fits() -> None:
    server_words = Problem("fasp-19", "refused: " + "x" * 1_000_000, "y" * 1_000_000, "z" * 10**6)
    text = report.render(make([server_words] * 30, moved=["a" * 100_000] * 30), PARIS)
    assert len(text.encode()) <= report.MAX_TEXT_BYTES
    assert max(len(line) for line in text.splitlines()) < 300
    assert "the report was cut" not in text, "cut texts, not the report"
    assert text.count("refused: xxx") == 20


def test_wide_characters_cannot_push_the_report_over_its_byte_cap() -> None:
    wide = "\U0001f600" * 1000  # four bytes each in UTF-8
    problems = [Problem(f"code-{i % 3}", f"{i} {wide}", f"{i} {wide}", wide) for i in range(40)]
    text = report.render(make(problems, moved=[wide] * 30, left=[wide] * 30), PARIS)
    assert len(text.encode()) <= report.MAX_TEXT_BYTES
    assert text.endswith("bytes; report.json has more.\n")


def test_control_characters_never_reach_the_report_raw() -> None:
    nul = Problem("unsendable-name", "'a\x00b.mp4' contains a NUL", "fix\x1b[2J it", "a\x00b.mp4")
    text = report.render(make([nul], moved=["ep\n1.mov"], left=["caf\udce9.mov"]), PARIS)
    assert "\x00" not in text
    assert "\x1b" not in text
    assert "'a\\0b.mp4' contains a NUL" in text
    assert "  - ep\\n1.mov" in text
    assert "  - caf\\xe9.mov" in text


def test_no_problems_recorded_still_says_so() -> None:
    assert "no reason was recorded" in report.render(make([]), PARIS)


# -- report.json and writing -------------------------------------------------------------------


def test_report_json_is_capped_and_counts_every_kind() -> None:
    problems = [missing(i) for i in range(100_000)] + [AMPERSAND]
    files = [f"show/clip{i}.mov" for i in range(5000)]
    data = report.to_json(make(problems, moved=files, left=["x" * 5000]))
    listed, moved, left = data["problems"], data["files"], data["left_in_drop_folder"]
    assert isinstance(listed, list)
    assert isinstance(moved, list)
    assert isinstance(left, list)
    assert len(listed) == report.JSON_PROBLEMS
    assert data["problems_total"] == 100_001
    assert data["problems_by_code"] == {"missing-file": 100_000, "bad-file-name": 1}
    assert len(moved) == report.JSON_FILES
    assert data["files_total"] == 5000
    assert [len(name) for name in left] == [report.JSON_TEXT]
    assert len(json.dumps(data)) < 300_000


def test_write_puts_both_files_in_the_folder_atomically(tmp_path: Path) -> None:
    r = make([missing(1), AMPERSAND], moved=["show/ep105.xml"], left=["show/caf\udce9.mov"])
    txt = report.write(tmp_path / "failed" / r.submission, r)
    folder = txt.parent
    assert sorted(p.name for p in folder.iterdir()) == [report.REPORT_TXT, report.REPORT_JSON]
    assert "was NOT sent" in txt.read_text(encoding="utf-8")
    data = json.loads((folder / report.REPORT_JSON).read_text(encoding="utf-8"))
    assert data["problems"][1]["code"] == "bad-file-name"
    assert data["left_in_drop_folder"] == ["show/caf\udce9.mov"]  # exact, JSON-escaped
    assert data["failed_at"] == "2024-07-01T12:00:05+00:00"
