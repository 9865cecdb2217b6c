"""An ascp that outlives its daemon (a site's wrapper script that runs ascp without `exec`,
so PR_SET_PDEATHSIG reaches only the wrapper) is stopped before a new daemon decides
anything: it could otherwise log in late and send a manifest the new daemon sends too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hotfolder.config import settings as config
from hotfolder.transfer.orphans import stop_orphans
from tests import manifests
from tests.helpers import ascp_config, wait_until, write_config

SEND = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path, PurePosixPath
    from hotfolder.config import settings as config
    from hotfolder.transfer.targets import Session, build

    cfg = config.load(Path(sys.argv[1]))
    target = build(cfg.targets["aspera"], cfg.state_dir)
    session = Session("m-1", "manifest", ((Path(sys.argv[2]), PurePosixPath("m.xml")),))
    target.send(session, lambda _done: None, threading.Event())
    """
)


def processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_an_ascp_left_by_a_killed_daemon_behind_a_wrapper_is_stopped(tmp_path: Path) -> None:
    path = ascp_config(tmp_path)
    wrapper = tmp_path / "bin" / "ascp"
    wrapper.write_text(wrapper.read_text().replace("exec ", ""))  # a site's wrapper, no exec
    source = tmp_path / "drop" / "m.xml"
    source.write_text(manifests.ooyala(manifests.ooyala_item("a.mov", None, None)))
    state_dir = config.load(path).state_dir
    env = {**os.environ, "ASCP_SIM_LOGIN_S": "60"}  # it stays in its login
    daemon = subprocess.Popen([sys.executable, "-c", SEND, str(path), str(source)], env=env)
    try:
        # The gate opened: ascp has said INIT and is in its login, well past needing us.
        wait_until(lambda: list(state_dir.rglob("manifest.attempt")), what="the gate open")
    finally:
        daemon.kill()
        daemon.wait()
    (orphan,) = processes_naming("ascp_sim.py")  # it outlived the daemon
    assert stop_orphans(state_dir) == [orphan]
    assert orphan not in processes_naming("ascp_sim.py")  # gone (a zombie names nothing)


def test_hotfolder_run_stops_what_names_its_own_state_dir_only(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    state_dir = config.load(path).state_dir
    ours = tmp_path / "ours-marker"
    theirs = tmp_path / "theirs-marker"
    sleeper = "import time; time.sleep(120)"

    def lingering(marker: Path, root: Path) -> subprocess.Popen[bytes]:
        pair_list = f"--file-pair-list={root}/ascp/aspera/m-1.manifest.list"
        return subprocess.Popen([sys.executable, "-c", sleeper, pair_list, str(marker)])

    left = lingering(ours, state_dir)
    other = lingering(theirs, tmp_path / "another-state-dir")
    try:
        wait_until(lambda: processes_naming(str(ours)) and processes_naming(str(theirs)))
        run = subprocess.run(
            [sys.executable, "-m", "hotfolder", "run", "--once", "--config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "left by a daemon that died" in run.stdout + run.stderr
        assert left.wait(10) == -9
        assert other.poll() is None, "another state dir's session was touched"
    finally:
        for proc in (left, other):
            proc.kill()
            proc.wait()
