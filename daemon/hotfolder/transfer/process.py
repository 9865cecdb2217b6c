"""The one place that spawns processes (house style: argv is built elsewhere, as data).

Each child gets its own process group, so a stop reaches everything it started; its output is
collected on a thread and only the tail is kept, for error messages. Callers log `masked(argv)`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence

OUTPUT_TAIL_LINES = 50
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    """In the child, before exec: if the daemon is killed (kill -9), take ascp with it, so no
    orphaned session can finish a delivery that the restarted daemon does not know about."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


SECRET_OPTIONS = ("--password", "-W", "--token")


def masked(argv: Sequence[str]) -> str:
    """The command line as it may be logged: values of secret-bearing options hidden."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("*****")
            hide_next = False
        elif arg in SECRET_OPTIONS:
            out.append(arg)
            hide_next = True
        elif arg.startswith(tuple(f"{o}=" for o in SECRET_OPTIONS)):
            out.append(arg.split("=", 1)[0] + "=*****")
        else:
            out.append(arg)
    return " ".join(out)


class Child:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.argv = tuple(argv)
        self._tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
        self._proc = subprocess.Popen(
            self.argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, no locks taken
        )
        self._reader = threading.Thread(
            target=self._read, name=f"output-{self._proc.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read(self) -> None:
        output = self._proc.stdout
        if output is None:  # Popen was given stdout=PIPE: never the case
            return
        for raw in output:
            self._tail.append(raw.decode("utf-8", "replace").rstrip())
        output.close()

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig: signal.Signals) -> None:
        """Signal the whole process group; a child that is already gone is not an error."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def stop(self, grace: float = 5.0) -> int:
        """Let it exit by itself for `grace`; then SIGINT (ascp's clean stop), SIGTERM and
        SIGKILL to its process group, each given `grace`."""
        self.wait(grace)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.poll() is not None:
                break
            self.signal(sig)
            self.wait(grace)
        code = self._proc.wait()
        self._reader.join(grace)
        return code

    def output(self) -> list[str]:
        self._reader.join(1.0)
        return list(self._tail)
