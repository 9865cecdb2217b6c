"""systemd's notify protocol: READY, STATUS, WATCHDOG and STOPPING, through sd_notify(3).

Outside systemd (no $NOTIFY_SOCKET) every call is a cheap no-op. The watchdog is fed only
from the main loop, so a wedged loop stops feeding it and systemd restarts the daemon.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from hotfolder.model import State

Sender = Callable[[str], object]


def _sd_notify(message: str) -> object:
    from systemd import daemon  # noqa: PLC0415 - libsystemd is only needed under systemd

    return daemon.notify(message)


class Notifier:
    def __init__(
        self, send: Sender | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self._send = send or _sd_notify
        usec = int(env.get("WATCHDOG_USEC", "0") or 0)
        # Feed at half the interval systemd expects, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval = usec / 2e6 if usec > 0 else None
        self._last_status = ""
        self._last_fed = float("-inf")

    def _notify(self, message: str) -> None:
        if self.enabled:
            self._send(message)

    def ready(self, status: str) -> None:
        self._notify(f"READY=1\nSTATUS={status}")
        self._last_status = status

    def status(self, status: str) -> None:
        if status != self._last_status:
            self._notify(f"STATUS={status}")
            self._last_status = status

    def watchdog(self, now: float) -> None:
        """Feed the watchdog if systemd set one (WATCHDOG_USEC), at half its interval."""
        if self.watchdog_interval is None or now - self._last_fed < self.watchdog_interval:
            return
        self._last_fed = now
        self._notify("WATCHDOG=1")

    def still_starting(self, status: str, seconds: float) -> None:
        """Waiting for something before READY (a fleet's database): asks systemd for
        `seconds` more than its start timeout, and says why in STATUS=."""
        self._notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}\nSTATUS={status}")
        self._last_status = status

    def stopping(self) -> None:
        self._notify("STOPPING=1\nSTATUS=stopping")


def status_line(counts: Mapping[State, int]) -> str:
    """'3 sending, 12 pending, 1 held, 0 failed', from the journal's counts by state."""
    sending = sum(
        counts.get(s, 0)
        for s in (State.QUEUED, State.SENDING_MEDIA, State.MEDIA_SENT, State.SENDING_MANIFEST)
    )
    waiting = counts.get(State.PENDING, 0) + counts.get(State.READY, 0)
    return (
        f"{sending} sending, {waiting} pending, {counts.get(State.HELD, 0)} held, "
        f"{counts.get(State.FAILED, 0)} failed, {counts.get(State.COMPLETE, 0)} complete"
    )
