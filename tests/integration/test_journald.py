"""Log lines reach a real systemd-journald with native fields (tests/run starts one)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import structlog

from hotfolder.config import settings as config
from hotfolder.model import State
from hotfolder.service import logs
from tests import manifests
from tests.helpers import running, wait_until, write_config

pytestmark = pytest.mark.journald


@pytest.fixture(autouse=True)
def _journald() -> None:
    if not Path("/run/systemd/journal/socket").exists():
        pytest.fail("no systemd-journald socket: run the suite through tests/run")


def journal_entries(**match: str) -> list[dict[str, str]]:
    args = ["journalctl", "-o", "json", "--no-pager", *(f"{k}={v}" for k, v in match.items())]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_native_fields_reach_the_journal() -> None:
    sid = f"test-{uuid.uuid4().hex}"
    try:
        logs.configure("journald", "debug")
        structlog.get_logger().warning(
            "media sent", submission_id=sid, watch="ooyala", state="media-sent", password="hunter2"
        )
    finally:
        logs.configure("json", "debug", stream=sys.stderr)
    (entry,) = wait_until(lambda: journal_entries(SUBMISSION_ID=sid), what="the journal entry")
    assert entry["WATCH"] == "ooyala"
    assert entry["STATE"] == "media-sent"
    assert entry["PRIORITY"] == "4"
    assert entry["SYSLOG_IDENTIFIER"] == "hotfolder"
    assert entry["MESSAGE"].startswith("media sent")
    assert "hunter2" not in json.dumps(entry), "a secret reached the journal"
    assert entry["PASSWORD"] == logs.MASK


def test_code_file_and_line_name_the_line_that_logged() -> None:
    """CODE_FILE/CODE_LINE/CODE_FUNC point at the caller, not at the renderer in logs.py."""
    sid = f"test-{uuid.uuid4().hex}"
    try:
        logs.configure("journald", "debug")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        structlog.get_logger().info("from the test", submission_id=sid)
    finally:
        logs.configure("json", "debug", stream=sys.stderr)
    (entry,) = wait_until(lambda: journal_entries(SUBMISSION_ID=sid), what="the journal entry")
    assert (entry["CODE_FILE"], entry["CODE_LINE"]) == (__file__, str(line))
    assert entry["CODE_FUNC"] == "test_code_file_and_line_name_the_line_that_logged"
    assert entry["MESSAGE"] == "from the test", "call-site keys must not leak into MESSAGE"
    assert "LINENO" not in entry
    assert "PATHNAME" not in entry


def test_a_submission_tells_its_whole_story_in_the_journal(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path))
    drop = tmp_path / "drop"
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    try:
        logs.configure("journald", "info")
        with running(cfg) as daemon:
            sid = wait_until(
                lambda: next(
                    (
                        r.id
                        for r in daemon.journal.rows()
                        if r.state is State.COMPLETE and r.postprocessed
                    ),
                    None,
                )
            )
    finally:
        logs.configure("json", "debug", stream=sys.stderr)
    entries = wait_until(
        lambda: (
            [
                e
                for e in journal_entries(SUBMISSION_ID=sid)
                if e.get("MESSAGE", "").startswith("submission complete")
            ]
            and journal_entries(SUBMISSION_ID=sid)
        )
    )
    states = [e.get("STATE") for e in entries]
    for state in ("ready", "sending-media", "media-sent", "sending-manifest", "complete"):
        assert state in states
    assert all(e["WATCH"] == "w" for e in entries)
    assert all(e["PRIORITY"] == "6" for e in entries)
    # Each line names the module that logged it (daemon, delivery, ...), never the renderer.
    assert all(not e["CODE_FILE"].endswith("/logs.py") for e in entries)
    package = Path(logs.__file__).parents[1]  # hotfolder/, whatever stage folder logged
    assert all(e["CODE_FILE"].startswith(str(package)) for e in entries)


def test_auto_picks_journald_when_stderr_is_the_journal(tmp_path: Path) -> None:
    """Under systemd, JOURNAL_STREAM names stderr's device:inode; auto must then use journald."""
    script = (
        "import os, sys\n"
        "st = os.fstat(2)\n"
        "os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
        "from hotfolder.service import logs\n"
        "print(logs.configure('auto'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert out.stdout.strip() == "journald"
    plain = subprocess.run(
        [sys.executable, "-c", "from hotfolder.service import logs; print(logs.configure('auto'))"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"},
    )
    assert plain.stdout.strip() == "json"
