"""The Debian package under a real systemd 252, booted as PID 1 of private namespaces.

One boot for the whole module (booting is the slow part); the tests are its steps, in file
order: install, deliver, reload, restart on a crash and on a hung loop, stop, upgrade, remove
and purge. The module fixture tears the namespaces down by PID and proves nothing survived:
no process, mount or cgroup, and the host's /tmp untouched (a canary file in it survives).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import manifests
from tests.helpers import wait_until
from tests.integration.test_ascp_real import real_ascp  # noqa: F401 - the fixture, shared
from tests.system import aspera
from tests.system.container import HOSTNAME, Container

REPO = Path(__file__).resolve().parents[2]
# Not under /tmp: the container gets a fresh /tmp, and must see the packages it installs.
SCRATCH = REPO / "build" / "systemd-test"
CONFIG = "/etc/hotfolder/hotfolder.yaml"
DROP = "/srv/dropbox/incoming"
INGEST = "/srv/ingest"
UNIT = "hotfolder.service"
SITE = "/usr/lib/hotfolder/lib/python3.11/site-packages/hotfolder/"

# Two package builds (about a minute each) happen in the first test's fixtures.
pytestmark = pytest.mark.timeout(1200)


@dataclass(frozen=True)
class Debs:
    first: Path
    upgrade: Path


def build_deb(dist: Path, version: str) -> Path:
    out = subprocess.run(
        [str(REPO / "packaging" / "build-deb")],
        env={**os.environ, "HOTFOLDER_DEB_VERSION": version, "HOTFOLDER_DEB_DIST": str(dist)},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    deb = Path(out.stdout.strip().splitlines()[-1])
    assert deb.name.startswith(f"hotfolder_{version}_")
    return deb


@pytest.fixture(scope="module")
def debs() -> Debs:
    upstream = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    dist = SCRATCH / "debs"
    versions = (f"{upstream}-1", f"{upstream}-1+upgrade1")
    if os.environ.get("HOTFOLDER_SYSTEM_TEST_REUSE_DEBS") == "1":  # iterating on the test only
        return Debs(*(next(dist.glob(f"hotfolder_{v}_*.deb")) for v in versions))
    return Debs(*(build_deb(dist, v) for v in versions))


@pytest.fixture(scope="module")
def canary() -> Iterator[Path]:
    path = Path("/tmp") / f"hotfolder-canary-{uuid.uuid4().hex}"
    path.write_text("the host's /tmp must survive the boot")
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def box(debs: Debs, canary: Path) -> Iterator[Container]:
    container = Container(SCRATCH)
    try:
        yield container
    finally:
        container.teardown()
    left = container.leftovers()
    assert left.processes == ()
    assert left.mounts == ()
    assert left.cgroups == ()
    assert canary.read_text() == "the host's /tmp must survive the boot"
    container.remove_scratch()


def system_state(box: Container) -> str | None:
    state = box.run("systemctl", "is-system-running", check=False).stdout.strip()
    return state if state in ("running", "degraded") else None


def unit(box: Container) -> dict[str, str]:
    return box.show(UNIT, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts", "Result")


def running(box: Container) -> dict[str, str] | None:
    now = unit(box)
    return now if (now["ActiveState"], now["SubState"]) == ("active", "running") else None


def apt_install(box: Container, deb: Path) -> str:
    """apt with the local file; the container has no network, so nothing else can come."""
    env = ("env", "DEBIAN_FRONTEND=noninteractive")
    inside = f"/var/cache/{deb.name}"  # not the host path: it may be under the host's /tmp
    box.put(deb, inside)
    return box.run(*env, "apt-get", "install", "-y", "--no-install-recommends", inside).stdout


def diagnose(box: Container) -> str:
    status = box.run("systemctl", "status", "--no-pager", "-l", UNIT, check=False).stdout
    log = box.run("journalctl", "--no-pager", "-n", "40", "-u", UNIT, check=False).stdout
    return f"{status}\n{log}"


def until(box: Container, condition: Callable[[], Any], what: str) -> Any:
    """wait_until, and on a timeout say what systemd and the journal say about the unit."""
    try:
        return wait_until(condition, timeout=60, what=what)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{diagnose(box)}") from None


def journal(box: Container, *match: str) -> list[dict[str, str]]:
    out = box.run("journalctl", "-o", "json", "--no-pager", "-u", UNIT, *match).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def drop(box: Container, name: str, text: str, folder: str = DROP) -> None:
    """As an editor's copy would finish: written beside the drop folder, renamed into it."""
    staging = f"{Path(folder).parent}/.staging-{name}"
    box.write(staging, text)
    box.run("mv", staging, f"{folder}/{name}")


def drop_manifest(box: Container, name: str, media: str, folder: str = DROP) -> str:
    """Drop a manifest whose media is not there yet; return its submission id (pending)."""
    drop(box, name, manifests.ooyala(manifests.ooyala_item(media, None, None)), folder)

    def pending() -> str | None:
        for e in journal(box, "STATE=pending"):
            if Path(e.get("MANIFEST", "")).name == name:
                return e["SUBMISSION_ID"]
        return None

    sid: str = until(box, pending, what=f"{name} pending in the journal")
    return sid


def completed(box: Container, sid: str) -> list[dict[str, str]]:
    return [
        e
        for e in journal(box, f"SUBMISSION_ID={sid}")
        if e["MESSAGE"].startswith("submission complete")
    ]


def delivered(box: Container, *names: str) -> bool:
    there = box.run("ls", INGEST).stdout.split()
    return all(n in there for n in names)


def test_systemd_boots_clean_and_the_host_tmp_is_untouched(box: Container, canary: Path) -> None:
    assert until(box, lambda: system_state(box), what="boot") == "running"
    assert box.run("systemctl", "--failed", "--no-legend").stdout.strip() == ""
    assert canary.exists()
    assert box.run("hostname").stdout.strip() == HOSTNAME
    assert os.uname().nodename != HOSTNAME


def test_the_package_installs_enabled_started_and_documented(box: Container, debs: Debs) -> None:
    assert "hotfolder" in apt_install(box, debs.first)
    assert box.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    now = until(box, lambda: running(box), what="the service running")
    # Type=notify: `running` only after READY=1; then the STATUS= line.
    assert "0 sending" in now["StatusText"]
    assert box.run("hotfolder", "check-config", CONFIG).returncode == 0
    assert box.run("id", "-u", "hotfolder").stdout.strip() != "0"
    assert "Drop-folder video ingest" in box.run("man", "-P", "cat", "hotfolder").stdout
    assert box.run("test", "-f", "/usr/share/doc/hotfolder/README.md.gz").returncode == 0
    assert box.run("test", "-f", "/usr/share/bash-completion/completions/hotfolder").returncode == 0
    conffiles = box.run("dpkg-query", "-W", "-f=${Conffiles}", "hotfolder").stdout
    assert CONFIG in conffiles
    # No Aspera credential file exists: LoadCredential= of a missing one must not stop it.
    assert box.run("test", "-e", "/etc/credstore/aspera-password", check=False).returncode != 0


def test_a_dropped_submission_is_delivered_and_logged_with_its_fields(box: Container) -> None:
    sid = drop_manifest(box, "first.xml", "first.mov")
    drop(box, "first.mov", "video")
    until(box, lambda: completed(box, sid), what="the delivery")
    assert delivered(box, "first.mov", "first.xml")
    entries = journal(box, f"SUBMISSION_ID={sid}")
    assert {e["WATCH"] for e in entries} == {"incoming"}
    assert {"pending", "ready", "complete"} <= {e.get("STATE") for e in entries}
    for e in entries:
        assert e["CODE_FILE"].startswith(SITE), e["CODE_FILE"]
        assert not e["CODE_FILE"].endswith("/logs.py")
        # The line named is the one that logged this very message (a call may span lines).
        source = box.run("cat", e["CODE_FILE"]).stdout.splitlines()
        line = int(e["CODE_LINE"])
        around = "\n".join(source[line - 1 : line + 3])
        first_word = e["MESSAGE"].split()[0].rstrip(":")
        assert re.search(rf'f?"{re.escape(first_word)}', around), (e["MESSAGE"], line, around)


def test_reload_fails_visibly_on_a_broken_config_and_works_on_a_good_one(
    box: Container,
) -> None:
    pid = unit(box)["MainPID"]
    good = box.run("cat", CONFIG).stdout
    box.write(CONFIG, good.replace("stability_seconds: 5", "stability_seconds: soon"))
    broken = box.run("systemctl", "reload", UNIT, check=False)
    assert broken.returncode != 0
    assert unit(box)["MainPID"] == pid, "a refused reload must keep the daemon running"
    assert running(box)
    box.write(CONFIG, good.replace("stability_seconds: 5", "stability_seconds: 1"))
    box.run("systemctl", "reload", UNIT)
    until(
        box,
        lambda: [e for e in journal(box) if e["MESSAGE"].startswith("config reloaded")],
        what="the reload in the journal",
    )
    assert unit(box)["MainPID"] == pid


def test_a_config_error_at_start_stays_failed_instead_of_looping(box: Container) -> None:
    good = box.run("cat", CONFIG).stdout
    box.write(CONFIG, good.replace("target: ingest", "target: nowhere"))
    try:
        box.run("systemctl", "restart", UNIT, check=False)
        failed = until(
            box,
            lambda: (now := unit(box))["ActiveState"] == "failed" and now,
            what="the unit to fail",
        )
        assert failed["Result"] == "exit-code"
        assert box.show(UNIT, "ExecMainStatus")["ExecMainStatus"] == "2"
        assert failed["NRestarts"] == "0", "exit 2 must not be restarted"
    finally:
        box.write(CONFIG, good)
    box.run("systemctl", "start", UNIT)
    until(box, lambda: running(box), what="the service running again")


def test_kill_9_is_restarted_by_systemd_and_the_submission_resumes(box: Container) -> None:
    sid = drop_manifest(box, "killed.xml", "killed.mov")
    before = unit(box)
    box.run("kill", "-9", before["MainPID"])
    after = until(
        box,
        lambda: (now := running(box)) and now["MainPID"] != before["MainPID"] and now,
        what="systemd to restart it",
    )
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    drop(box, "killed.mov", "video")
    (done,) = until(box, lambda: completed(box, sid), what="the resumed delivery")
    assert done["_PID"] == after["MainPID"]
    assert delivered(box, "killed.mov", "killed.xml")


def test_a_main_loop_that_stops_turning_is_restarted_by_the_watchdog(box: Container) -> None:
    # The unit's 60 s watchdog, shortened for the test by a drop-in: the mechanism is the same.
    box.run("mkdir", "-p", f"/etc/systemd/system/{UNIT}.d")
    box.write(f"/etc/systemd/system/{UNIT}.d/test-watchdog.conf", "[Service]\nWatchdogSec=4s\n")
    box.run("systemctl", "daemon-reload")
    box.run("systemctl", "restart", UNIT)
    before = until(box, lambda: running(box), what="the service running")
    box.run("kill", "-STOP", before["MainPID"])
    after = until(
        box,
        lambda: (now := running(box)) and now["MainPID"] != before["MainPID"] and now,
        what="the watchdog to restart it",
    )
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    out = box.run("journalctl", "--no-pager", "-u", UNIT, "-g", "Watchdog timeout").stdout
    assert "Watchdog timeout (limit 4s)!" in out
    box.run("rm", f"/etc/systemd/system/{UNIT}.d/test-watchdog.conf")
    box.run("systemctl", "daemon-reload")


def test_stop_ends_within_the_grace_period(box: Container) -> None:
    box.run("systemctl", "stop", UNIT)
    after = box.show(UNIT, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    assert after["ActiveState"] == "inactive"
    assert after["Result"] == "success", "a stop past TimeoutStopSec= would say timeout"
    assert (after["ExecMainCode"], after["ExecMainStatus"]) == ("1", "0")  # exited, status 0
    box.run("systemctl", "start", UNIT)
    until(box, lambda: running(box), what="the service running again")


def test_an_upgrade_restarts_it_and_keeps_the_journal_and_pending_work(
    box: Container, debs: Debs
) -> None:
    sid = drop_manifest(box, "across.xml", "across.mov")
    edited = box.run("cat", CONFIG).stdout
    before = unit(box)
    apt_install(box, debs.upgrade)
    version = box.run("dpkg-query", "-W", "-f=${Version}", "hotfolder").stdout
    assert version.endswith("+upgrade1")
    after = until(
        box,
        lambda: (now := running(box)) and now["MainPID"] != before["MainPID"] and now,
        what="the upgraded service running",
    )
    assert box.run("cat", CONFIG).stdout == edited, "the admin's config must be kept"
    drop(box, "across.mov", "video")
    (done,) = until(box, lambda: completed(box, sid), what="the delivery")
    assert done["_PID"] == after["MainPID"]
    status = box.run(
        "setpriv", "--reuid=hotfolder", "--regid=hotfolder", "--clear-groups",
        "hotfolder", "status", "--config", CONFIG, "--json",
    )  # fmt: skip
    rows = {row["id"]: row["state"] for row in json.loads(status.stdout)}
    completed_before = [e["SUBMISSION_ID"] for e in journal(box, "STATE=complete")]
    assert len(set(completed_before)) >= 3
    assert all(rows.get(s) == "complete" for s in completed_before), rows


ASPERA_DROP = "/srv/dropbox/aspera"
#: A second watch, so the packaged one's submissions never meet the ascp target.
ASPERA_CONFIG = f"""
  - name: aspera
    path: {ASPERA_DROP}
    target: aspera
    stability_seconds: 1
    after_success: keep
    failed_dir: /srv/dropbox/failed
"""
ASPERA_TARGET = f"""
  aspera:
    type: ascp
    host: 127.0.0.1
    ssh_port: {aspera.SSH_PORT}
    user: {aspera.USER}
    destination: /
    password_credential: aspera-password
    ascp_path: {aspera.ASCP}
    connect_timeout: 20
"""
#: What a sandbox that breaks ascp leaves in the unit's journal: a seccomp kill (SIGSYS, which
#: the daemon reports as a negative exit status), a call refused with EPERM (the unit's
#: SystemCallErrorNumber=), a MemoryDenyWriteExecute refusal, a file it may not open. ascp's own
#: licence refusal (FASP 40/38) reads "Operation not permitted by license": not the sandbox's.
SANDBOX_DAMAGE = re.compile(
    r"SIGSYS|Bad system call|core dump|Operation not permitted(?! by license)"
    r"|Permission denied|memory protection|status -\d"
)


def with_aspera(config: str) -> str:
    """The packaged config plus the aspera watch and target (each appended to its list)."""
    watches, targets = config.split("\ntargets:\n")
    return f"{watches}{ASPERA_CONFIG}\ntargets:\n{targets}{ASPERA_TARGET}"


def session_errors(box: Container, sid: str) -> list[str]:
    """The FASP codes of the ascp sessions this submission ended, in order."""
    return [
        e["CODE"]
        for e in journal(box, f"SUBMISSION_ID={sid}")
        if e["MESSAGE"].startswith("ascp session error")
    ]


def restart(box: Container) -> None:
    # Earlier steps started it often: clear StartLimitBurst's count, then start afresh.
    box.run("systemctl", "reset-failed", UNIT)
    box.run("systemctl", "restart", UNIT)
    until(box, lambda: running(box), what="the service running")


def as_daemon_user(box: Container, *argv: str) -> str:
    user = ("setpriv", "--reuid=hotfolder", "--regid=hotfolder", "--clear-groups")
    return box.run(*user, "hotfolder", *argv, "--config", CONFIG).stdout


def test_the_real_ascp_gets_as_far_under_the_units_hardening_as_outside_it(
    box: Container,
    real_ascp: Path,  # noqa: F811 - the imported fixture
) -> None:
    """Item 3 of issue 11: MemoryDenyWriteExecute=, SystemCallFilter= and the rest must let the
    real ascp 3.9 reach the server and fail there with a FASP code, as it does outside."""
    hardening = box.show(UNIT, "MemoryDenyWriteExecute", "SystemCallFilter")
    assert hardening["MemoryDenyWriteExecute"] == "yes"
    assert hardening["SystemCallFilter"], "the package's filter must be in force"
    cursor = box.run("journalctl", "-n", "0", "--show-cursor", "-q").stdout.split("cursor: ")[1]
    aspera.install_ascp(box, real_ascp.parent)
    aspera.start_sshd(box)
    good = box.run("cat", CONFIG).stdout
    sid = None
    try:
        until(box, lambda: aspera.listening(box), what="sshd in the container to listen")
        # Outside the unit, the same binary, user and server: how far it gets.
        for fasp, password in (
            (aspera.AUTH_FAILED, aspera.WRONG_PASSWORD),
            (aspera.CLIENT_LICENCE, aspera.PASSWORD),
        ):
            assert fasp.outcome in aspera.ascp_outside_the_unit(box, password)
        # Under the unit: the password through LoadCredential=, a wrong one first.
        aspera.set_password(box, aspera.WRONG_PASSWORD)
        box.run("mkdir", "-p", ASPERA_DROP)
        box.run("chown", "hotfolder:hotfolder", ASPERA_DROP)
        box.write(CONFIG, with_aspera(good))
        restart(box)
        sid = drop_manifest(box, "fasp.xml", "fasp.mov", ASPERA_DROP)
        drop(box, "fasp.mov", "video", ASPERA_DROP)
        first = until(box, lambda: session_errors(box, sid), what="the ascp session to end")
        assert first == [aspera.AUTH_FAILED.code]
        # The right one: credentials are loaded at start, so restart, then release it.
        aspera.set_password(box, aspera.PASSWORD)
        restart(box)
        as_daemon_user(box, "retry", sid)
        codes = until(
            box, lambda: (c := session_errors(box, sid))[1:] and c, what="the second session"
        )
        assert codes == [aspera.AUTH_FAILED.code, aspera.CLIENT_LICENCE.code]
        messages = [e["MESSAGE"] for e in journal(box, f"SUBMISSION_ID={sid}")]
        assert any(aspera.Outcome.CLIENT_LICENCE in m for m in messages)
        (row,) = (r for r in json.loads(as_daemon_user(box, "status", "--json")) if r["id"] == sid)
        assert (row["state"], row["error_code"]) == ("held", f"admin:fasp-{codes[-1]}")
        assert unit(box)["NRestarts"] == "0", "ascp must not take the daemon down"
        since = ("journalctl", "--no-pager", "-o", "cat", f"--after-cursor={cursor}")
        logged = box.run(*since, "-u", UNIT).stdout.splitlines()
        damage = [line for line in logged if SANDBOX_DAMAGE.search(line)]
        assert damage == [], "\n".join(damage)
    finally:
        box.run("systemctl", "stop", UNIT)
        if sid is not None:
            as_daemon_user(box, "forget", "--yes", sid)
        box.write(CONFIG, good)
        box.run("rm", "-f", aspera.CREDENTIAL)
        aspera.stop_sshd(box)
    restart(box)


def test_remove_keeps_config_and_journal_and_purge_removes_them(box: Container) -> None:
    env = ("env", "DEBIAN_FRONTEND=noninteractive")
    box.run(*env, "apt-get", "remove", "-y", "hotfolder")
    assert box.show(UNIT, "ActiveState")["ActiveState"] == "inactive"
    assert box.run("test", "-e", "/usr/bin/hotfolder", check=False).returncode != 0
    assert box.run("test", "-f", CONFIG).returncode == 0
    assert box.run("test", "-f", "/var/lib/hotfolder/journal.sqlite").returncode == 0
    box.run(*env, "apt-get", "purge", "-y", "hotfolder")
    assert box.run("test", "-e", "/etc/hotfolder", check=False).returncode != 0
    assert box.run("test", "-e", "/var/lib/hotfolder", check=False).returncode != 0
    # Editors' files are never the package's to delete.
    assert delivered(box, "first.mov", "first.xml")
    assert box.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip() != "enabled"
