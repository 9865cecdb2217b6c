"""The CLI as an admin meets it: what check-config checks beyond the file, what `run` and
`status` say about a damaged journal, `journal reset`, and the exit status of `run --once`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests import manifests
from tests.helpers import ascp_config, hotfolder, wait_until, write_config


def edit_target(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    target = data["targets"]["aspera"]
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def line_of(path: Path, key: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith(f"{key}:"))


# -- check-config: executables and credentials -------------------------------------------------


def test_check_config_finds_a_missing_password_file_and_an_ascp_not_on_path(
    tmp_path: Path,
) -> None:
    path = ascp_config(tmp_path)
    edit_target(path, ascp_path="no-such-ascp-here", password_file=str(tmp_path / "nope.pass"))
    out = hotfolder("check-config", str(path))
    assert out.returncode == 2, out
    assert "OK" not in out.stdout
    assert f"{path}: 2 errors:" in out.stderr
    assert (
        f"{path}:{line_of(path, 'password_file')}: at 'targets.aspera.password_file': "
        f"Aspera password file {tmp_path}/nope.pass does not exist"
    ) in out.stderr
    assert (
        f"{path}:{line_of(path, 'ascp_path')}: at 'targets.aspera.ascp_path': "
        "'no-such-ascp-here' is not found on PATH"
    ) in out.stderr
    assert "hint: install the IBM Aspera client" in out.stderr
    only = hotfolder("check-config", "--config-only", str(path))
    assert only.returncode == 0, only
    assert "checked the file only" in only.stdout


def test_check_config_says_what_it_could_not_check(tmp_path: Path) -> None:
    path = ascp_config(tmp_path)
    edit_target(path, password_file=None, password_credential="aspera-password")
    out = hotfolder("check-config", str(path), env={"CREDENTIALS_DIRECTORY": ""})
    assert out.returncode == 0, out
    assert (
        f"{path}:{line_of(path, 'password_credential')}: at 'targets.aspera.password_credential'"
        ": not checked: credential 'aspera-password' is only visible under systemd"
    ) in out.stdout
    creds = tmp_path / "creds"
    creds.mkdir()
    inside = hotfolder("check-config", str(path), env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert inside.returncode == 2, inside
    assert f"credential 'aspera-password') file {creds}/aspera-password does not exist" in (
        inside.stderr
    )


def test_check_config_checks_backlot_and_smtp_secrets_without_printing_them(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    (tmp_path / "smtp.pass").write_text("")
    data["backlot"] = {"main": {"api_key": "k.p", "api_secret_file": str(tmp_path / "b.secret")}}
    data["notifications"] = {
        "email": {
            "from": "a@example.com",
            "to": ["b@example.com"],
            "password_file": str(tmp_path / "smtp.pass"),
        }
    }
    path.write_text(yaml.safe_dump(data))
    out = hotfolder("check-config", str(path))
    assert out.returncode == 2, out
    assert f"Backlot secret file {tmp_path}/b.secret does not exist" in out.stderr
    assert f"SMTP password file {tmp_path}/smtp.pass is empty" in out.stderr


def test_run_starts_with_a_missing_credential_and_says_so(tmp_path: Path) -> None:
    path = ascp_config(tmp_path)
    edit_target(path, password_file=str(tmp_path / "nope.pass"))
    out = hotfolder("run", "--once", "--config", str(path))
    assert out.returncode == 0, out
    assert "the config names something this process cannot use" in out.stdout + out.stderr


# -- a damaged journal -------------------------------------------------------------------------


def test_a_damaged_journal_stops_run_and_status_with_what_to_do_until_reset(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path)
    journal = tmp_path / "state" / "journal.sqlite"
    journal.parent.mkdir()
    journal.write_bytes(b"\x00garbage\xff" * 1000)
    for args in (("run", "--once"), ("status",), ("hold", "x"), ("scan",)):
        out = hotfolder(*args, "--config", str(path))
        said = out.stdout + out.stderr
        assert out.returncode == 2, (args, said)
        assert "Traceback" not in said, args
        assert "is damaged" in said, args
        assert "hotfolder journal reset" in said, args
    check = hotfolder("journal", "--config", str(path), "check")
    assert check.returncode == 2
    reset = hotfolder("journal", "--config", str(path), "reset")
    assert reset.returncode == 0, reset
    (aside,) = journal.parent.glob("journal.sqlite.damaged-*")
    assert aside.read_bytes() == b"\x00garbage\xff" * 1000
    assert hotfolder("status", "--config", str(path)).returncode == 0
    again = hotfolder("journal", "--config", str(path), "reset")
    assert again.returncode == 1
    assert "is not damaged; nothing was done" in again.stderr
    assert hotfolder("journal", "--config", str(path), "check").returncode == 0


# -- run --once: the exit status says whether everything went ----------------------------------


def test_run_once_exits_1_when_a_submission_failed_and_0_when_all_went(tmp_path: Path) -> None:
    path = write_config(tmp_path, stability_seconds=0.2)
    drop = tmp_path / "drop"
    (drop / "a.mov").write_bytes(b"a")
    (drop / "m.xml").write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    good = hotfolder("run", "--once", "--config", str(path))
    assert good.returncode == 0, good.stdout + good.stderr
    assert (tmp_path / "ingest" / "m.xml").exists()
    (drop / "bad.xml").write_text("<rss><channel><item>")  # malformed: fails at once
    bad = hotfolder("run", "--once", "--config", str(path))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert list((tmp_path / "failed").glob("*/REPORT.txt"))
    quiet = hotfolder("run", "--once", "--config", str(path))  # the failure was last time
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr


def test_exit_codes_are_in_the_help() -> None:
    out = hotfolder("run", "--help")
    assert "exit status:" in out.stdout
    assert "1  something did not succeed: `run --once` had a submission fail or held" in (
        out.stdout
    )


def test_a_second_daemon_on_one_state_dir_is_refused_until_the_first_dies(tmp_path: Path) -> None:
    """Two daemons on one journal would each send every manifest: the second one is refused
    at once, saying which process runs; a kill -9 leaves no lock behind."""
    path = write_config(tmp_path, stability_seconds=0.2)
    first = subprocess.Popen(
        [sys.executable, "-m", "hotfolder", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until((tmp_path / "state" / "control" / "hotfolder.sock").exists)
        second = hotfolder("run", "--once", "--config", str(path))
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"another hotfolder daemon (pid {first.pid})" in second.stdout + second.stderr
    finally:
        first.kill()
        first.wait()
    alone = hotfolder("run", "--once", "--config", str(path))
    assert alone.returncode == 0, alone.stdout + alone.stderr
