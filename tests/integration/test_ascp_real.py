"""Contract tests against the real IBM ascp 3.9 client (from PyPI's cos-aspera wheel, fetched
at test time and cached, never committed) and a throwaway OpenSSH server on 127.0.0.1.

No Aspera server can be had, so a real transfer stops at the server's licence check; that is
far enough to prove the argv, the environment-passed password and the error handling.
These tests fail (never skip) when the client cannot be fetched: CI must notice.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.transfer import faspmgr
from hotfolder.transfer.process import Child
from hotfolder.transfer.targets import Session, TransferError
from hotfolder.transfer.targets.ascp import AscpSettings, AscpTarget
from hotfolder.transfer.targets.ascp_command import build_argv, build_env
from tests.helpers import SIMULATOR, wait_until

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "cos-aspera"
WHEEL_DIR = "cos_aspera-0.1.163682.data/purelib/cos_aspera/"
WHEEL_FILES = ("aspera-license", "aspera.conf", "ascp")  # ascp looks for its licence beside it
USER = "hftest"
PASSWORD = "right-Pa55-4242"


@pytest.fixture(scope="session")
def real_ascp() -> Path:
    ascp = CACHE / "ascp"
    if not ascp.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.6",
                "--platform",
                "manylinux1_x86_64",
                "cos-aspera==0.1.163682",
                "-d",
                str(CACHE),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        wheels = list(CACHE.glob("cos_aspera-*.whl"))
        if not wheels:
            pytest.fail(f"cannot fetch the real ascp (cos-aspera) from PyPI:\n{fetched.stderr}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in WHEEL_FILES:  # the binary last: its presence means the cache is whole
                with wheel.open(WHEEL_DIR + name) as src, open(CACHE / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        ascp.chmod(0o755)
    return ascp


@dataclass(frozen=True)
class Sshd:
    port: int
    key: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def sshd(real_ascp: Path) -> Iterator[Sshd]:
    """sshd on 127.0.0.1 with a user that exists only in this test's mount namespace."""
    if os.environ.get("HOTFOLDER_IN_NS") != "1" or os.geteuid() != 0:
        pytest.fail("the SSH contract tests need root in tests/run's private mount namespace")
    if not Path("/usr/sbin/sshd").exists():
        pytest.fail("openssh-server is not installed (packaging/dev-env installs it)")
    # Not under pytest's tmp (mode 0700): the test user must reach its home and the ascp in it.
    home = Path(tempfile.mkdtemp(prefix="hotfolder-sshd-"))
    os.chmod(home, 0o755)  # noqa: S103 - the test user must traverse it
    key = home / "hostkey"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", str(key)],
        check=True,
    )
    (home / "bin").mkdir()
    (home / "bin" / "ascp").symlink_to(real_ascp)  # the server side runs ascp too
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    accounts = {
        "passwd": f"{USER}:x:4242:4242:hotfolder test:{home}:/bin/sh",
        "shadow": f"{USER}:{hashed}:19000:0:99999:7:::",
        "group": f"{USER}:x:4242:",
    }
    mounted = []
    for name, line in accounts.items():
        copy = home / name
        copy.write_text(Path(f"/etc/{name}").read_text() + line + "\n")
        subprocess.run(["mount", "--bind", str(copy), f"/etc/{name}"], check=True)
        mounted.append(f"/etc/{name}")
    port = _free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {home}/sshd.pid\n"
        "UsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin no\nPubkeyAcceptedAlgorithms +ssh-rsa\nHostKeyAlgorithms +ssh-rsa\n"
        f"SetEnv PATH={home}/bin:/usr/bin:/bin\nStrictModes no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    server = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(home / "sshd_config")], stderr=subprocess.DEVNULL
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=15, what="sshd to listen")
        yield Sshd(port, key)
    finally:
        server.terminate()
        server.wait(10)
        for path in mounted:
            subprocess.run(["umount", path], check=False)
        shutil.rmtree(home, ignore_errors=True)


def settings(tmp: Path, ascp: Path, password: str | None = None, **kw: object) -> AscpSettings:
    pw = None
    if password is not None:
        pw = tmp / "pw"
        pw.write_text(password)
    base: dict[str, object] = {
        "name": "real",
        "host": "127.0.0.1",
        "user": USER,
        "work_dir": tmp / "work",
        "ascp_path": str(ascp),
        "password_file": pw,
        "connect_timeout": 20.0,
    }
    return AscpSettings(**{**base, **kw})  # type: ignore[arg-type]


def session(tmp: Path, label: str = "media") -> Session:
    src = tmp / "clip.mov"
    src.write_bytes(b"x" * 1000)
    return Session("contract-1", label, ((src, PurePosixPath("clip.mov")),))


def send(target: AscpTarget, s: Session) -> TransferError:
    with pytest.raises(TransferError) as err:
        target.send(s, lambda _: None, threading.Event())
    return err.value


def test_it_is_the_real_ascp_3_9(real_ascp: Path) -> None:
    out = subprocess.run([str(real_ascp), "-A"], capture_output=True, text=True, check=False)
    assert "ascp version 3.9.0" in out.stdout


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"target_rate": "100m", "min_rate": "1m", "policy": "high", "cipher": "aes-128"},
        {"target_rate": "50%", "policy": "low", "resume": 3, "cipher": "aes-256"},
        {"sshfp": "SHA256:aZjoXq8gFTrwoQedA/qZUQzwh4+7Ti84ZP7fMfcF0k0", "resume": 0},
        {"destination": "/incoming/with space & ünicode"},
    ],
    ids=["defaults", "rates-cipher", "percent-rate", "sshfp", "odd-destination"],
)
@pytest.mark.parametrize("label", ["media", "manifest"])
def test_every_argv_we_build_passes_the_real_option_parser(
    tmp_path: Path, real_ascp: Path, variant: dict[str, object], label: str
) -> None:
    """Against a closed port: real ascp parses everything, then cannot connect (error 44,
    retryable). A usage error would be code 8 and say so."""
    closed = _free_port()
    target = AscpTarget(settings(tmp_path, real_ascp, "pw", ssh_port=closed, **variant))
    err = send(target, session(tmp_path, label))
    assert err.code == "fasp-44", err.message
    assert "Failed to open TCP connection for SSH" in err.message
    assert err.retryable


def test_a_key_file_argv_is_accepted(tmp_path: Path, real_ascp: Path, sshd: Sshd) -> None:
    target = AscpTarget(settings(tmp_path, real_ascp, key_file=sshd.key, ssh_port=_free_port()))
    assert send(target, session(tmp_path)).code == "fasp-44"


def test_a_wrong_password_is_an_auth_failure_and_not_retryable(
    tmp_path: Path, real_ascp: Path, sshd: Sshd
) -> None:
    target = AscpTarget(settings(tmp_path, real_ascp, "not-the-password", ssh_port=sshd.port))
    err = send(target, session(tmp_path))
    assert err.code == "fasp-19"
    assert "failed to authenticate" in err.message
    assert not err.retryable


def test_the_right_password_gets_through_to_the_servers_licence_refusal(
    tmp_path: Path, real_ascp: Path, sshd: Sshd
) -> None:
    """Proves the password travels in ASPERA_SCP_PASS; a licence refusal is not retried."""
    target = AscpTarget(settings(tmp_path, real_ascp, PASSWORD, ssh_port=sshd.port))
    err = send(target, session(tmp_path))
    assert err.code == "fasp-38"
    assert "Server has only a client license" in err.message
    assert not err.retryable


def frames_of(argv_for: object, env: dict[str, str]) -> list[faspmgr.Frame]:
    """Run one ascp-like command against our own management listener; return its frames."""
    with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
        port = listener.getsockname()[1]
        child = Child(argv_for(port), env)  # type: ignore[operator]
        try:
            ready, _, _ = select.select([listener], [], [], 20)
            assert ready, child.output()
            conn, _ = listener.accept()
            parser = faspmgr.FrameParser()
            frames: list[faspmgr.Frame] = []
            conn.settimeout(30)
            with conn:
                while data := conn.recv(65536):
                    frames += parser.feed(data)
        finally:
            child.stop()
    return frames


def test_simulator_frames_match_real_ascp_field_for_field(
    tmp_path: Path, real_ascp: Path, sshd: Sshd
) -> None:
    s = session(tmp_path)
    pairs = tmp_path / "pairs.list"
    pairs.write_text(f"{s.files[0][0]}\nclip.mov\n")
    real_settings = settings(tmp_path, real_ascp, ssh_port=sshd.port)
    real = frames_of(
        lambda port: build_argv(real_settings, s, port, pairs),
        build_env(os.environ, "wrong-password"),
    )
    sim_settings = settings(tmp_path, Path(sys.executable), ssh_port=sshd.port)
    sim_env = build_env(os.environ, "wrong-password") | {
        "ASCP_SIM_ROOT": str(tmp_path / "server"),
        "ASCP_SIM_STATE": str(tmp_path / "sim"),
        "ASCP_SIM_PASSWORD": "the-right-one",
    }
    sim = frames_of(
        lambda port: (
            sys.executable,
            str(SIMULATOR),
            *build_argv(sim_settings, s, port, pairs)[1:],
        ),
        sim_env,
    )
    assert [f.type for f in real] == ["INIT", "SESSION", "ERROR"]
    assert [f.type for f in sim] == [f.type for f in real]
    for r, m in zip(real, sim, strict=True):
        if r.type == "SESSION":
            assert set(m.fields) <= set(r.fields), set(m.fields) - set(r.fields)
        else:
            assert set(m.fields) == set(r.fields), (r.type, set(m.fields) ^ set(r.fields))
    assert (sim[-1].get("Code"), sim[-1].get("Description")) == (
        real[-1].get("Code"),
        real[-1].get("Description"),
    )
