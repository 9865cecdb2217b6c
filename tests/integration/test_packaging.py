"""The systemd unit is valid and hardened; the CLI speaks clearly about bad configs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from hotfolder.cli import main as cli
from hotfolder.model import State
from hotfolder.state.journal import Journal
from tests import manifests
from tests.helpers import write_config
from tests.unit.test_journal import sub

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
UNIT = PACKAGING / "hotfolder.service"
MAX_EXPOSURE = 1.5
INSTALLED = "/usr/bin/hotfolder"  # what the Debian package installs (a link into its venv)


def test_unit_verifies_without_a_word(tmp_path: Path) -> None:
    """Verified with the venv's `hotfolder` standing in for the packaged one, which exists
    only where the .deb is installed (tests/system checks the real thing under systemd)."""
    venv_bin = Path(sys.executable).parent / "hotfolder"
    unit = tmp_path / "hotfolder.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(venv_bin)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0
    assert out.stdout + out.stderr == "", out.stdout + out.stderr


def unit_settings(section: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    current = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_runs_the_package_and_reload_checks_the_config_first() -> None:
    service = unit_settings("Service")
    config = "/etc/hotfolder/hotfolder.yaml"
    assert service["ExecStart"] == [f"{INSTALLED} run --config {config}"]
    # A failing ExecStartPre is restarted regardless of RestartPreventExitStatus=: `run`
    # checks the config itself and exits 2, which is never restarted.
    assert "ExecStartPre" not in service
    assert service["RestartPreventExitStatus"] == ["2"]
    assert service["ExecReload"] == [
        f"{INSTALLED} check-config {config}",
        "/bin/kill -HUP $MAINPID",
    ]
    unit = unit_settings("Unit")
    assert (unit["StartLimitIntervalSec"], unit["StartLimitBurst"]) == (["5min"], ["5"])


def _load_gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", PACKAGING / "gen_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_man_page_documents_every_command_and_renders_cleanly(tmp_path: Path) -> None:
    gen_docs = _load_gen_docs()
    page = tmp_path / "hotfolder.1"
    page.write_text(gen_docs.man_page(cli._parser()))
    sections = [line for line in page.read_text().splitlines() if line.startswith(".SS ")]
    subparsers = next(
        a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name in subparsers.choices:
        assert f'.SS "{name.replace("-", chr(92) + "-")}"' in sections
    out = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True, check=False
    )
    assert (out.returncode, out.stderr) == (0, "")
    rendered = subprocess.run(
        ["man", "-l", "-P", "cat", str(page)], capture_output=True, text=True, check=True
    ).stdout
    assert "--once" in rendered
    assert "EXIT STATUS" in rendered


def complete(script: Path, *words: str) -> list[str]:
    """What bash's completion offers for `words` (the last one being completed)."""
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        '_hotfolder\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completion_offers_commands_options_and_files(tmp_path: Path) -> None:
    script = tmp_path / "hotfolder"
    script.write_text(_load_gen_docs().bash_completion(cli._parser()))
    (tmp_path / "site.yaml").write_text("")
    assert complete(script, "hotfolder", "che") == ["check-config"]
    assert complete(script, "hotfolder", "run", "--o") == ["--once"]
    assert complete(script, "hotfolder", "status", "--config", str(tmp_path / "si")) == [
        str(tmp_path / "site.yaml")
    ]
    assert complete(script, "hotfolder", "check-config", str(tmp_path / "si")) == [
        str(tmp_path / "site.yaml")
    ]


def test_the_packaged_config_passes_check_config_in_the_packaged_folders(
    tmp_path: Path,
) -> None:
    """The conffile, with / moved to tmp_path, against the folders the tmpfiles entry makes."""
    root = str(tmp_path)
    for line in (PACKAGING / "hotfolder.tmpfiles.conf").read_text().splitlines():
        if line.startswith("d "):
            (tmp_path / line.split()[1].lstrip("/")).mkdir(parents=True, exist_ok=True)
    text = (PACKAGING / "hotfolder.yaml").read_text()
    text = text.replace(" /srv/", f" {root}/srv/").replace(" /var/lib/", f" {root}/var/lib/")
    config = tmp_path / "etc" / "hotfolder" / "hotfolder.yaml"
    config.write_text(text)
    out = hotfolder("check-config", str(config))
    assert out.returncode == 0, out.stderr
    assert "/srv/" not in text.replace(f"{root}/srv/", ""), "a path left outside tmp_path"


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
    assert "'soon' is not a duration" in out.stderr
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
