"""A worker of the after stage on a thread of its own (alerts, verify): it never holds up an
upload, runs one turn at a time until the daemon stops, and sleeps between turns until it is
woken or the turn says when it wants to look again."""

from __future__ import annotations

import threading


class Background:
    def __init__(self, name: str, stop: threading.Event) -> None:
        self.stop = stop
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Look now: new work came in (or the daemon is stopping)."""
        self._wake.set()

    def _end(self, timeout: float) -> None:
        """Wake the thread for its last turn and wait for it (it ends once `stop` is set)."""
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop.is_set():
            pause = self.turn()
            self._wake.wait(pause)
            self._wake.clear()

    def turn(self) -> float:
        """One round of work; returns how long to sleep (unless woken) before the next."""
        raise NotImplementedError
