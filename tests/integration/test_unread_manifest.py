"""A daemon killed (kill -9) in a manifest session after its gate opened: the staged copy's
access time decides whether the manifest can have left (transfer.targets.unread). Each
session runs in a process of its own, killed for real; the simulator dies with it
(PR_SET_PDEATHSIG), as ascp does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path, PurePosixPath

import pytest

from hotfolder.config import settings as config
from hotfolder.transfer.targets import Session, TransferError
from hotfolder.transfer.targets import ascp as ascp_target
from hotfolder.transfer.targets import build as build_target
from tests import manifests
from tests.helpers import ascp_config, wait_until

SEND = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path, PurePosixPath
    from hotfolder.config import settings as config
    from hotfolder.transfer.targets import Session, build

    cfg = config.load(Path(sys.argv[1]))
    target = build(cfg.targets["aspera"], cfg.state_dir)
    session = Session(sys.argv[2], "manifest", ((Path(sys.argv[3]), PurePosixPath("m.xml")),))
    target.send(session, lambda _done: None, threading.Event())
    """
)


MANIFEST = manifests.ooyala(manifests.ooyala_item("a.mov", None, None))
MANIFEST_BYTES = len(MANIFEST.encode())


class Setup:
    def __init__(
        self, tmp: Path, rate: float = 50e6, faults: list[dict[str, object]] | None = None
    ) -> None:
        self.tmp = tmp
        self.config_path = ascp_config(tmp, faults=faults, rate=rate)
        cfg = config.load(self.config_path)
        target = build_target(cfg.targets["aspera"], cfg.state_dir)
        assert isinstance(target, ascp_target.AscpTarget)
        self.target = target
        self.source = tmp / "drop" / "m.xml"
        self.source.write_text(MANIFEST)

    def session(self, sid: str, dest: str = "m.xml") -> Session:
        return Session(sid, "manifest", ((self.source, PurePosixPath(dest)),))

    def teach(self) -> None:
        """One manifest session that completes: it shows that this ascp's reads are seen."""
        taught = self.session("m-0", "taught.xml")  # elsewhere: --overwrite=diff would skip
        self.target.send(taught, lambda _done: None, threading.Event())
        assert self.target.reads_seen.known()

    def killed(self, sid: str, when: str, login_s: float = 0.05) -> None:
        """Send `sid`'s manifest in a process of its own and kill -9 it once `when` is true:
        "gate-open" (the attempt marker is written) or "read" (the manifest's bytes reached
        the server's partial file)."""
        env = {**os.environ, "ASCP_SIM_LOGIN_S": str(login_s)}
        argv = [sys.executable, "-c", SEND, str(self.config_path), sid, str(self.source)]
        marker = self.target.attempt_marker(self.session(sid))
        partial = self.tmp / "server" / "incoming" / "m.xml.partial"
        ready = {"gate-open": marker.exists, "read": partial.exists}[when]
        proc = subprocess.Popen(argv, env=env)
        try:
            wait_until(ready, timeout=30, what=when)
        finally:
            proc.kill()
            proc.wait()
        wait_until(lambda: not self._sim_running(), what="the simulator died with its parent")

    def _sim_running(self) -> bool:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(self.tmp).encode() in cmdline.read_bytes():
                    return True
            except OSError:
                continue
        return False

    def landed(self) -> list[str]:
        path = self.tmp / "sim" / "landed.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line)["name"] for line in lines]


def test_killed_in_ascp_s_login_after_the_gate_opened_it_is_sent_again_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASCP_SIM_RECORD_STARTS", "1")
    setup = Setup(tmp_path)
    setup.teach()
    setup.killed("m-1", "gate-open", login_s=30)
    session = setup.session("m-1")
    assert setup.target.delivered(session) is False  # provably nothing left: no hold
    setup.target.send(session, lambda _done: None, threading.Event())
    assert setup.landed() == ["taught.xml", "m.xml"]  # m-1's manifest once


def test_killed_after_ascp_read_the_manifest_it_is_still_held(tmp_path: Path) -> None:
    setup = Setup(tmp_path, rate=MANIFEST_BYTES / 2)  # read at once, then 2 s on the wire
    setup.teach()
    setup.killed("m-1", "read")
    assert setup.target.delivered(setup.session("m-1")) is None  # may have left: held


def test_before_a_completed_session_showed_ascp_s_reads_a_kill_in_its_login_is_held(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path)
    setup.killed("m-1", "gate-open", login_s=30)
    assert not setup.target.reads_seen.known()
    assert setup.target.delivered(setup.session("m-1")) is None


def test_a_retry_after_a_kill_in_login_takes_back_the_marker_nothing_left_behind(
    tmp_path: Path,
) -> None:
    """The try after the kill replaces the staged copy; its marker goes first, so a try
    that then dies before its gate opens is not held for the first one's marker."""
    setup = Setup(tmp_path, faults=[{"session": 3, "kind": "exit_before_connect"}])
    setup.teach()
    setup.killed("m-1", "gate-open", login_s=30)
    session = setup.session("m-1")
    with pytest.raises(TransferError):
        setup.target.send(session, lambda _done: None, threading.Event())
    assert not setup.target.attempt_marker(session).exists()
    assert setup.target.delivered(session) is False


def test_a_manifest_session_that_fails_before_reading_the_manifest_is_not_held(
    tmp_path: Path,
) -> None:
    """ascp errs after the gate opened but before it read a byte (a server refusal): it
    may be retried or held for the admin, never held as possibly delivered."""
    refusal = {"session": 2, "kind": "error", "file": "m.xml", "code": 41}
    setup = Setup(tmp_path, faults=[{**refusal, "description": "path outside docroot"}])
    setup.teach()
    session = setup.session("m-1")
    with pytest.raises(TransferError) as raised:
        setup.target.send(session, lambda _done: None, threading.Event())
    assert raised.value.code == "fasp-41"
    assert not raised.value.may_have_arrived
    assert setup.target.delivered(session) is False
