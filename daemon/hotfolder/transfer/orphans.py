"""ascp sessions that outlived the daemon that started them.

PR_SET_PDEATHSIG (process.py) takes ascp down with a daemon killed with -9, but only the
process the daemon spawned: an `ascp_path` that is a site's wrapper script running ascp without
`exec` leaves ascp itself running, still in its login, with the manifest's staged name in its
file list. The restarted daemon, finding no attempt marker, rightly sends the manifest again;
the orphan, once logged in, would send it a second time. So before the daemon decides anything
it stops every process of its own user whose file list lies in one of its own targets' work
dirs: with the state dir's lock held (service.instance), no live daemon can own one.

Under the packaged unit systemd already kills what is left in the unit's cgroup before a
restart; this is for every other way of running the daemon (by hand, from cron, a container).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import structlog

from hotfolder.transfer.process import masked
from hotfolder.transfer.targets.ascp_command import FILE_LIST_OPTION

log = structlog.get_logger()

PROC = Path("/proc")
#: How long an orphan killed with SIGKILL may take to be gone (it cannot act meanwhile).
GONE_WITHIN = 10.0


def stop_orphans(state_dir: Path) -> list[int]:
    """SIGKILL our processes left running with a file list of this state dir's targets;
    return their pids once they are gone (or zombies, which run no more code)."""
    # Spelt as configured and resolved; asked of every process of ours, so worked out once.
    roots = frozenset({state_dir / "ascp", state_dir.resolve() / "ascp"})
    stopped = [pid for pid in _left_running(roots) if _kill_if_still(pid, roots)]
    deadline = time.monotonic() + GONE_WITHIN
    while any(_alive(pid) for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.01)  # the kernel finishing a SIGKILL: nothing of ours to wait on
    for pid in stopped:
        if _alive(pid):
            log.error("an ascp session left by a dead daemon does not die", pid=pid)
    return stopped


def _left_running(roots: frozenset[Path]) -> list[int]:
    uid = os.getuid()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile
            if entry.stat().st_uid == uid and _ours(_argv(int(entry.name)), roots):
                found.append(int(entry.name))
    return found


def _kill_if_still(pid: int, roots: frozenset[Path]) -> bool:
    """SIGKILL `pid` through a pidfd, after reading its command line again through it: a
    pid reused since the scan is left alone."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False  # gone already
    try:
        argv = _argv(pid)
        if not _ours(argv, roots):
            return False
        log.warning(
            "stopping an ascp session left by a daemon that died", pid=pid, argv=masked(argv)
        )
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        return False  # gone meanwhile
    finally:
        os.close(pidfd)
    return True


def _argv(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(a) for a in raw.split(b"\0") if a]


def _ours(argv: list[str], roots: frozenset[Path]) -> bool:
    """A file list in <state_dir>/ascp/<target>/, not in a state dir nested below ours."""
    prefix = f"{FILE_LIST_OPTION}="
    return any(
        Path(arg.removeprefix(prefix)).parent.parent in roots
        for arg in argv
        if arg.startswith(prefix)
    )


def _alive(pid: int) -> bool:
    """Still able to run code: there, and not a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
