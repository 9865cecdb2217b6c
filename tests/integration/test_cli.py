"""The command line as an admin meets it (issue 11 item 5): --version, one way to name the
config on every command, -v/-q, status that shows only what is known, IDs by unique prefix,
a closed pipe, a live view, and a demo that runs from any folder."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.cli import main as cli
from hotfolder.config import settings as configuration
from hotfolder.model import Problem, State
from hotfolder.state.journal import Journal
from tests.helpers import hotfolder, wait_until, write_config
from tests.unit.test_journal import sub

NOW = datetime.now(UTC)


def journal_of(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state" / "journal.sqlite")


# -- version, config path, log level -----------------------------------------------------------


def test_version_names_the_installed_package() -> None:
    out = hotfolder("--version")
    assert (out.returncode, out.stdout) == (
        0,
        f"hotfolder {importlib.metadata.version('hotfolder')}\n",
    )


def test_the_config_comes_from_the_option_the_environment_or_etc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cli.CONFIG_ENV, raising=False)
    assert cli.config_path(argparse.Namespace()) == Path("/etc/hotfolder/hotfolder.yaml")
    monkeypatch.setenv(cli.CONFIG_ENV, "/from/env.yaml")
    assert cli.config_path(argparse.Namespace()) == Path("/from/env.yaml")
    args = cli._parser().parse_args(["-c", "/top.yaml", "status"])
    assert cli.config_path(args) == Path("/top.yaml")
    args = cli._parser().parse_args(["status", "--config", "/after.yaml"])
    assert cli.config_path(args) == Path("/after.yaml")

    path = write_config(tmp_path)
    env = {cli.CONFIG_ENV: str(path)}
    by_env = hotfolder("check-config", env=env)
    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stdout.startswith(f"{path}: OK")
    by_option = hotfolder("check-config", "--config-only", "-c", str(path))
    assert by_option.returncode == 0, by_option.stderr
    missing = hotfolder("status", env={cli.CONFIG_ENV: str(tmp_path / "nope.yaml")})
    assert missing.returncode == 2
    assert f"--config FILE or ${cli.CONFIG_ENV}" in missing.stderr


def test_check_config_keeps_the_positional_form_for_a_while(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    old = hotfolder("check-config", str(path))
    assert old.returncode == 0, old.stderr
    assert old.stdout.startswith(f"{path}: OK")
    assert "deprecated: say --config CONFIG" in hotfolder("check-config", "--help").stdout
    both = hotfolder("check-config", str(path), "--config", str(path))
    assert both.returncode == 2
    assert "give the config once" in both.stderr


def test_verbose_and_quiet_move_the_log_level(tmp_path: Path) -> None:
    cfg = configuration.load(write_config(tmp_path, stability_seconds="1s"))  # level: debug
    parse = cli._parser().parse_args
    assert cli.log_level(cfg, parse(["run"])) == "debug"
    assert cli.log_level(cfg, parse(["run", "-qq"])) == "warning"
    assert cli.log_level(cfg, parse(["-q", "run", "-q", "-q", "-q", "-q"])) == "error"
    assert cli.log_level(cfg, parse(["run", "-v"])) == "debug"
    path = write_config(tmp_path)
    loud = hotfolder("run", "--once", "--config", str(path))
    quiet = hotfolder("run", "--once", "-qq", "--config", str(path))
    assert (loud.returncode, quiet.returncode) == (0, 0), quiet.stderr
    assert '"level": "info"' in loud.stdout + loud.stderr
    assert '"level": "info"' not in quiet.stdout + quiet.stderr
    assert '"level": "debug"' not in quiet.stdout + quiet.stderr


# -- status ------------------------------------------------------------------------------------


def test_an_empty_journal_is_one_clear_line_and_creates_nothing(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    out = hotfolder("status", "--config", str(path))
    assert (out.returncode, out.stdout) == (
        0,
        f"no submissions yet in {tmp_path}/state/journal.sqlite\n",
    )
    assert not (tmp_path / "state").exists()
    assert hotfolder("hold", "m-1", "--config", str(path)).returncode == 1
    assert not (tmp_path / "state").exists()


def test_status_has_a_header_and_shows_only_what_is_known(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = journal_of(tmp_path)
    earlier = NOW - timedelta(minutes=5)
    journal.record_pending(
        "p-1",
        "w",
        PurePosixPath("wait.xml"),
        earlier,
        {"missing": ["gone.mov"], "unsettled": ["big.mov"], "conflicts": []},
    )
    journal.record_failed(
        "f-1",
        "w",
        PurePosixPath("broken.xml"),
        (Problem("malformed-manifest", "not well-formed"),),
        earlier,
    )
    journal.record_ready(sub("r-1"), earlier)
    journal.close()
    out = hotfolder("status", "--config", str(path))
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.splitlines()
    assert header.split() == [
        "ID",
        "WATCH",
        "STATE",
        "FILES",
        "SIZE",
        "PROGRESS",
        "AGE",
        "TRIES",
        "NOTE",
    ]
    rows = {line.split()[0]: line for line in lines}
    assert rows["p-1"].split()[2:7] == ["pending", "2", "waited", "for", "-"]
    assert "missing: gone.mov; still changing: big.mov" in rows["p-1"]
    assert rows["f-1"].split()[2:5] == ["failed", "-", "-"]
    assert "manifest broken.xml; last error malformed-manifest: not well-formed" in rows["f-1"]
    assert " 0 files" not in out.stdout
    assert "tries 1" not in out.stdout
    assert rows["r-1"].split()[2:6] == ["ready", "2", "13", "B"]
    (f1,) = [
        r
        for r in json.loads(hotfolder("status", "--config", str(path), "--json").stdout)
        if r["id"] == "f-1"
    ]
    assert (f1["files"], f1["bytes_total"]) == (None, None)


def test_ids_are_taken_by_unique_prefix_and_an_ambiguous_one_lists_them(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = journal_of(tmp_path)
    for sid in ("m-abc111", "m-abc222", "m-xyz333"):
        journal.record_ready(sub(sid), NOW)
    journal.close()
    held = hotfolder("hold", "m-x", "--config", str(path))
    assert held.returncode == 0, held.stderr
    assert held.stdout.startswith("m-xyz333: held")
    ambiguous = hotfolder("retry", "m-abc", "--config", str(path))
    assert ambiguous.returncode == 2
    assert "'m-abc' could be any of 2 submissions" in ambiguous.stderr
    assert "  m-abc111\n  m-abc222" in ambiguous.stderr
    shown = hotfolder("status", "m-abc2", "--config", str(path))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("m-abc222  (w, ready,")
    assert "    a.mov  10 B" in shown.stdout
    assert hotfolder("status", "m-abc", "--config", str(path)).returncode == 2
    gone = hotfolder("forget", "m-abc1", "--yes", "--config", str(path))
    assert gone.stdout == "m-abc111: forgotten\n"
    journal = journal_of(tmp_path)
    assert journal.state_of("m-abc111") is None
    assert journal.state_of("m-xyz333") is State.HELD
    journal.close()


def test_status_for_one_watch(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = journal_of(tmp_path)
    journal.record_ready(sub("m-1"), NOW)
    journal.close()
    assert "m-1" in hotfolder("status", "--watch", "w", "--config", str(path)).stdout
    other = hotfolder("status", "--watch", "nope", "--config", str(path))
    assert other.returncode == 2
    assert "no watch named 'nope' (configured: w)" in other.stderr


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = journal_of(tmp_path)
    journal.record_ready(sub("m-1"), NOW)
    journal.close()
    # As `hotfolder status | head -1` with head gone before the table is written: the read
    # end is closed at once, so the first write meets a closed pipe (no race on pipe sizes).
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "hotfolder", "status", "--config", str(path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "BrokenPipeError" not in out.stderr


def test_follow_redraws_until_interrupted(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = journal_of(tmp_path)
    journal.record_ready(sub("m-1"), NOW)
    journal.close()
    screen = tmp_path / "screen.txt"
    with screen.open("w") as out:
        live = subprocess.Popen(
            [sys.executable, "-m", "hotfolder", "status", "-f", "--config", str(path)],
            stdout=out,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: screen.read_text().count("Ctrl-C to stop") >= 2, what="two frames")
            journal = journal_of(tmp_path)
            journal.transition("m-1", State.QUEUED, datetime.now(UTC))
            journal.close()
            wait_until(lambda: "queued" in screen.read_text(), what="the change, redrawn")
        finally:
            live.send_signal(signal.SIGINT)
            _, err = live.communicate(timeout=30)
    assert live.returncode == 0
    assert b"Traceback" not in err


# -- demo --------------------------------------------------------------------------------------


def test_demo_runs_from_any_folder(tmp_path: Path) -> None:
    out = hotfolder("demo", "--once", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ingest = sorted(p.suffix for p in (tmp_path / "demo" / "ingest").iterdir())
    assert ingest == [".dfxp", ".jpg", ".mp4", ".xml"]
