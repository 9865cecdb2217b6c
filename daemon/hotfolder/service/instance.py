"""One daemon per state dir. Two would each recover, dispatch and send what the journal holds:
every manifest twice. A `flock` on a file in the state dir says who runs; the kernel drops it
when the process dies however it dies (kill -9 included), so a crash never leaves a stale lock
behind, and a paused daemon (SIGSTOP) still holds it.

Started by hand or from cron beside a running daemon, `hotfolder run` is refused at once.
Started by systemd (a restart while a hand-run `run --once` is still busy), it waits for the
lock instead: refused, it would exhaust the unit's start limit and leave the service dead."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import structlog

log = structlog.get_logger()

LOCK_FILE = "daemon.lock"
#: How often a waiting start tries the lock again, and tells systemd it is still starting.
WAIT_PAUSE = 1.0
SAY_EVERY = 60.0

#: Called while waiting, with the status to show and the seconds until the next call.
StillStarting = Callable[[str, float], None]


class AlreadyRunning(Exception):
    """Another daemon runs on this state dir."""

    def __init__(self, state_dir: Path, pid: str) -> None:
        super().__init__(
            f"another hotfolder daemon ({_who(pid)}) runs on the state dir {state_dir}"
        )
        self.hint = (
            "stop it first (systemctl stop hotfolder), or give this one a state_dir of its own"
        )


class StateDirUnusable(Exception):
    """The lock file cannot be opened: an admin's fault (a file left by a run as root)."""

    def __init__(self, path: Path, err: OSError) -> None:
        super().__init__(f"cannot open {path}: {err.strerror}")
        self.hint = "the state dir and its files must belong to the daemon's user (chown -R)"


class StateDirLock:
    def __init__(self, state_dir: Path, wait: StillStarting | None = None) -> None:
        """`wait`: wait for the lock (telling systemd through it) instead of refusing."""
        self.state_dir = state_dir
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> StateDirLock:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited (PEP 446)
        except OSError as err:
            raise StateDirUnusable(path, err) from err
        try:
            self._lock(fd)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def _lock(self, fd: int) -> None:
        said = float("-inf")
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                if self.wait is None:
                    raise AlreadyRunning(self.state_dir, holder) from None
                if time.monotonic() - said >= SAY_EVERY:
                    said = time.monotonic()
                    log.warning(
                        "waiting for the other daemon on this state dir to stop",
                        holder=_who(holder),
                        state_dir=str(self.state_dir),
                    )
                self.wait(f"waiting for {_who(holder)} to leave the state dir", 2 * WAIT_PAUSE)
                time.sleep(WAIT_PAUSE)  # a lock held by another process: nothing to wait on
            else:
                return

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with it; the file stays (unlinking would race)
            self._fd = None


def _who(pid: str) -> str:
    return f"pid {pid}" if pid else "a process"
