"""ascp sessions that outlived the daemon that started them.

PR_SET_PDEATHSIG (process.py) takes ascp down with a daemon killed with -9, but only the
process the daemon spawned: an `ascp_path` that is a site's wrapper script running ascp without
`exec` leaves ascp itself running, still in its login, with the manifest's staged name in its
file list. The restarted daemon, finding no attempt marker, rightly sends the manifest again;
the orphan, once logged in, would send it a second time. So before the daemon decides anything
it stops every process whose command line names a file list in its own state dir: with the
state dir's lock held (service.instance), no live daemon can own one."""

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
    """SIGKILL every process left running with a file list under `state_dir`; return their
    pids once they are gone (or zombies, which run no more code)."""
    found = _left_running(state_dir)
    for pid, argv in found.items():
        log.warning(
            "stopping an ascp session left by a daemon that died", pid=pid, argv=masked(argv)
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + GONE_WITHIN
    while any(_alive(pid) for pid in found) and time.monotonic() < deadline:
        time.sleep(0.01)  # the kernel finishing a SIGKILL: nothing of ours to wait on
    return sorted(found)


def _left_running(state_dir: Path) -> dict[int, list[str]]:
    roots = {str(state_dir).rstrip("/"), str(state_dir.resolve())}
    prefixes = tuple(f"{FILE_LIST_OPTION}={root}/" for root in roots)
    found: dict[int, list[str]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if any(arg.startswith(prefixes) for arg in argv):
            found[int(entry.name)] = [a for a in argv if a]
    return found


def _alive(pid: int) -> bool:
    """Still able to run code: there, and not a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
