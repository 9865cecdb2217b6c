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
from tests.helpers import ascp_config, hotfolder, wait_until, write_config

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
    # The wrapper dies with the daemon (PR_SET_PDEATHSIG); what it started outlives both.
    wait_until(lambda: len(processes_naming(str(state_dir))) == 1, what="the wrapper gone")
    (orphan,) = processes_naming(str(state_dir))
    assert stop_orphans(state_dir) == [orphan]
    assert orphan not in processes_naming(str(state_dir))  # gone (a zombie names nothing)


def test_hotfolder_run_stops_its_own_state_dir_s_sessions_only(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    state_dir = config.load(path).state_dir
    sleeper = "sleep 120; :"  # the shell stays, with its arguments (no exec of sleep)

    def lingering(marker: str, root: Path, user: str | None = None) -> subprocess.Popen[bytes]:
        pair_list = f"--file-pair-list={root}/ascp/aspera/m-1.manifest.list"
        argv = ["/bin/sh", "-c", sleeper, "sh", pair_list, f"{tmp_path}/{marker}"]
        return subprocess.Popen(argv, user=user)

    ours = lingering("ours", state_dir)
    others = {
        "nested": lingering("nested", state_dir / "nested"),  # another daemon's state dir
        "nobody": lingering("nobody", state_dir, user="nobody"),  # not ours to kill
    }
    try:
        wait_until(lambda: len(processes_naming(str(tmp_path))) == 3, what="three sessions")
        run = hotfolder("run", "--once", "--config", str(path))
        assert run.returncode == 0, run.stdout + run.stderr
        assert "left by a daemon that died" in run.stdout + run.stderr
        assert ours.wait(10) == -9
        assert {name for name, proc in others.items() if proc.poll() is None} == set(others)
    finally:
        for proc in (ours, *others.values()):
            proc.kill()
            proc.wait()
