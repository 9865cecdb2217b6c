"""One daemon per state dir. Two would each recover, dispatch and send what the journal holds:
every manifest twice. A `flock` on a file in the state dir says who runs; the kernel drops it
when the process dies however it dies (kill -9 included), so a crash never leaves a stale lock
behind, and a paused daemon (SIGSTOP) still holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE = "daemon.lock"


class AlreadyRunning(Exception):
    """Another daemon runs on this state dir."""

    def __init__(self, state_dir: Path, pid: str) -> None:
        who = f"pid {pid}" if pid else "a process"
        super().__init__(f"another hotfolder daemon ({who}) runs on the state dir {state_dir}")
        self.hint = (
            "stop it first (systemctl stop hotfolder), or give this one a state_dir of its own"
        )


class StateDirLock:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._fd: int | None = None

    def __enter__(self) -> StateDirLock:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by ascp (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise AlreadyRunning(self.state_dir, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with it; the file stays (unlinking would race)
            self._fd = None
