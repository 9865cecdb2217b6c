"""The systemd unit is valid and hardened; the CLI speaks clearly about bad configs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hotfolder.journal import Journal
from hotfolder.model import State
from tests import manifests
from tests.helpers import write_config
from tests.unit.test_journal import sub

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "hotfolder.service"
MAX_EXPOSURE = 2.0


def test_unit_verifies_without_a_word() -> None:
    out = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0
    assert out.stdout + out.stderr == "", out.stdout + out.stderr


def test_unit_exposure_score_is_low() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for hotfolder.service: ([0-9.]+)", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_every_hardening_line_is_commented() -> None:
    """Each setting, or each run of related settings, has a comment right above it."""
    lines = UNIT.read_text().splitlines()
    section = lines[lines.index("# --- identity " + "-" * 79) : lines.index("[Install]")]
    for i, line in enumerate(section):
        if not line or line.startswith("#"):
            continue
        above = i - 1
        while above >= 0 and section[above] and not section[above].startswith("#"):
            above -= 1
        assert above >= 0, f"uncommented: {line}"
        assert section[above].startswith("#"), f"uncommented: {line}"


def hotfolder(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotfolder", *args], capture_output=True, text=True, check=False
    )


def test_check_config_prints_every_error_and_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    text = path.read_text().replace("stability_seconds: 0.5", "stability_seconds: soon")
    text = text.replace("target: nas\n", "target: nsa\n").replace("level: debug", "level: loud")
    path.write_text(text + "colour: blue\n")
    out = hotfolder("check-config", str(path))
    assert out.returncode == 2
    assert f"{path}: 3 errors" in out.stderr
    assert "unknown key 'colour'" in out.stderr
    assert "'loud' is not one of" in out.stderr
    assert "expected a number, got a string" in out.stderr
    assert re.search(
        rf"{re.escape(str(path))}:\d+: at 'watches\[0\].stability_seconds':", out.stderr
    )


def test_run_refuses_an_invalid_config_with_the_same_message(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("target: nas\n", "target: nsa\n"))
    check = hotfolder("check-config", str(path))
    run = hotfolder("run", "--config", str(path))
    assert run.returncode == 2
    assert run.stderr == check.stderr
    assert "no target named 'nsa'" in run.stderr


def test_check_config_accepts_a_good_config(tmp_path: Path) -> None:
    out = hotfolder("check-config", str(write_config(tmp_path)))
    assert out.returncode == 0, out.stderr
    assert "OK (1 watches, 1 targets)" in out.stdout


def test_demo_delivers_the_sample_manifest_last_and_archives_it(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    demo = (
        (REPO / "config" / "demo.yaml")
        .read_text()
        .replace("stability_seconds: 2", "stability_seconds: 0.3")
    )
    (tmp_path / "config" / "demo.yaml").write_text(demo)
    out = subprocess.run(
        [sys.executable, "-m", "hotfolder", "demo", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    ingest = sorted(p.suffix for p in (tmp_path / "demo" / "ingest").iterdir())
    assert ingest == [".dfxp", ".jpg", ".mp4", ".xml"]
    assert list((tmp_path / "demo" / "drop").iterdir()) == []
    assert len(list((tmp_path / "demo" / "archive").glob("*/*/receipt.json"))) == 1
    assert '"state": "sending-manifest"' in out.stderr


def test_scan_reports_each_submission_without_sending(tmp_path: Path) -> None:
    path = write_config(tmp_path, stability_seconds=0.05)
    drop = tmp_path / "drop"
    (drop / "a.mov").write_bytes(b"a" * 10)
    (drop / "good.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    (drop / "waits.xml").write_text(manifests.ooyala(manifests.ooyala_item("b.mov", None, None)))
    (drop / "bad.xml").write_text(manifests.ooyala(manifests.ooyala_item("../x.mov", None, None)))
    out = hotfolder("scan", "--config", str(path), "--json")
    assert out.returncode == 0, out.stderr
    looks = {look["manifest"]: look for look in json.loads(out.stdout)["w"]}
    assert looks["waits.xml"]["verdict"] == "wait"
    assert any("b.mov (missing)" in w for w in looks["waits.xml"]["waiting_for"])
    assert looks["bad.xml"]["verdict"] == "fail"
    assert looks["bad.xml"]["problems"][0]["code"] == "path-escapes"
    assert looks["good.xml"]["verdict"] == "send"
    assert looks["good.xml"]["format"] == "ooyala-mrss"
    media = looks["good.xml"]["files"][1]
    assert (media["path"], media["role"], media["size"], media["settled"]) == (
        "a.mov",
        "media",
        10,
        True,
    )
    text = hotfolder("scan", "--config", str(path))
    assert "would FAIL" in text.stdout
    assert "what to do:" in text.stdout
    assert list((tmp_path / "ingest").iterdir()) == []
    assert (drop / "bad.xml").exists()


def test_status_shows_progress_rate_and_eta(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    started = datetime.now(UTC) - timedelta(seconds=10)
    journal.record_ready(sub(), started)
    journal.transition("m-1", State.QUEUED, started)
    journal.transition("m-1", State.SENDING_MEDIA, started)
    journal.progress("m-1", 5)
    journal.close()
    out = hotfolder("status", "--config", str(path), "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["state"] == "sending-media"
    assert (row["bytes_done"], row["bytes_total"]) == (5, 13)
    assert 0.3 < row["rate_bytes_s"] <= 0.5  # 5 bytes in a little over 10 s
    assert 15 < row["eta_s"] < 27
    text = hotfolder("status", "--config", str(path)).stdout
    assert "[########" in text
    assert "eta" in text
