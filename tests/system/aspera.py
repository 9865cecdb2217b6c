"""The real IBM ascp 3.9 and a loopback OpenSSH server, set up inside the booted container.

As tests/integration/test_ascp_real.py does on the host, but everything here lives in the
container's overlays and namespaces: the test user is added to the overlay's /etc/passwd, ascp
and its licence files go to the overlay's /opt, and sshd runs as a transient unit of the
container's systemd on its private loopback. The container's teardown removes all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tests.system.container import Container

USER = "hftest"
PASSWORD = "right-Pa55-4242"
WRONG_PASSWORD = "not-the-password"
#: The container has its own network namespace: any port is free on its loopback.
SSH_PORT = 2222
ASCP_DIR = "/opt/aspera/bin"
ASCP = f"{ASCP_DIR}/ascp"
#: As the cos-aspera wheel lays them out: ascp reads its licence and config beside itself.
WHEEL_FILES = ("ascp", "aspera-license", "aspera.conf")
CREDENTIAL = "/etc/credstore/aspera-password"
SSHD_UNIT = "hotfolder-test-sshd.service"
SSHD_DIR = "/etc/hotfolder-test-sshd"


class Outcome(StrEnum):
    """What the real ascp says when it gets as far as it can against this server."""

    AUTH_FAILED = "failed to authenticate"  # FASP error 19
    CLIENT_LICENCE = "Server has only a client license"  # FASP error 38 (ascp's own 40)


@dataclass(frozen=True)
class Fasp:
    """The FASP error code the daemon records for each outcome (tests/integration proves them
    outside any unit)."""

    code: str
    outcome: Outcome


AUTH_FAILED = Fasp("19", Outcome.AUTH_FAILED)
CLIENT_LICENCE = Fasp("38", Outcome.CLIENT_LICENCE)


def install_ascp(box: Container, cache: Path) -> None:
    """Copy the wheel's ascp and its files from the host cache into the container's /opt."""
    box.run("mkdir", "-p", ASCP_DIR)
    for name in WHEEL_FILES:
        box.put(cache / name, f"{ASCP_DIR}/{name}")  # through stdin: the cache may be in /tmp
    box.run("chmod", "0755", ASCP)


def start_sshd(box: Container) -> None:
    """sshd on the container's 127.0.0.1:SSH_PORT, password login for USER, whose PATH finds
    the same ascp (the server side of a transfer runs ascp too)."""
    box.run("useradd", "--system", "--create-home", "--home-dir", f"/srv/{USER}", USER)
    box.run("chpasswd", input=f"{USER}:{PASSWORD}\n")  # stdin: never on a command line
    box.run("mkdir", "-p", SSHD_DIR, "/run/sshd")
    key = f"{SSHD_DIR}/hostkey"
    box.run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", key)
    box.write(
        f"{SSHD_DIR}/sshd_config",
        f"Port {SSH_PORT}\nListenAddress 127.0.0.1\nHostKey {key}\n"
        f"PidFile /run/{SSHD_UNIT}.pid\nUsePAM yes\nPasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin no\n"
        "PubkeyAcceptedAlgorithms +ssh-rsa\nHostKeyAlgorithms +ssh-rsa\n"
        f"SetEnv PATH={ASCP_DIR}:/usr/bin:/bin\nStrictModes no\n",
    )
    box.run(
        "systemd-run", f"--unit={SSHD_UNIT}",
        "/usr/sbin/sshd", "-D", "-e", "-f", f"{SSHD_DIR}/sshd_config",
    )  # fmt: skip


def listening(box: Container) -> bool:
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{SSH_PORT}"
    return box.run("bash", "-c", probe, check=False).returncode == 0


def stop_sshd(box: Container) -> None:
    box.run("systemctl", "stop", SSHD_UNIT, check=False)


def set_password(box: Container, password: str) -> None:
    """The unit's LoadCredential=aspera-password finds it in /etc/credstore (mode 0600)."""
    box.run("mkdir", "-p", "-m", "0700", Path(CREDENTIAL).parent.as_posix())
    box.run("sh", "-c", 'umask 077; cat > "$1"', "credential", CREDENTIAL, input=password)


def ascp_outside_the_unit(box: Container, password: str) -> str:
    """Run the same ascp as the daemon's user, but outside the unit's sandbox (no seccomp, no
    MemoryDenyWriteExecute), and return what it printed. The password reaches it as the daemon
    passes it, in ASPERA_SCP_PASS, read from stdin here: never on a command line."""
    script = (
        'IFS= read -r ASPERA_SCP_PASS; export ASPERA_SCP_PASS; cd /tmp; echo x > "$1"; '
        f'exec {ASCP} -P {SSH_PORT} --mode=send --host=127.0.0.1 --user={USER} "$1" /'
    )
    out = box.run(
        "setpriv", "--reuid=hotfolder", "--regid=hotfolder", "--clear-groups",
        "sh", "-c", script, "ascp", "/tmp/hotfolder-outside.bin",
        input=password + "\n", check=False,
    )  # fmt: skip
    assert out.returncode == 1, out  # failed as expected, not killed by a signal
    return out.stdout + out.stderr
