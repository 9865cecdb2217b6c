"""Starts the window from the config beside a running daemon (`hotfolder run`)."""

from __future__ import annotations

import os
from pathlib import Path

from hotfolder import __version__
from hotfolder.config.settings import Config, HttpConfig
from hotfolder.metrics import COUNTERS
from hotfolder.state.reader import JournalReader
from hotfolder.window.app import Actions, Outcome, WindowSettings, create_app
from hotfolder.window.server import Server
from hotfolder.window.users import Login, Throttle, UsersSource

__all__ = ["Actions", "Outcome", "Window", "start"]


class Window:
    """The running window: its server and the reader it must close."""

    def __init__(self, server: Server, reader: JournalReader) -> None:
        self.server = server
        self.reader = reader

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self.server.addresses

    def stop(self) -> None:
        self.server.stop()
        self.reader.close()


def start(cfg: Config, journal: Path, actions: Actions) -> Window | None:
    """Serve the window as `cfg.http` says (None when it is off)."""
    http: HttpConfig | None = cfg.http
    if http is None:
        return None
    COUNTERS.targets = {w.name: w.target for w in cfg.watches}
    reader = JournalReader(journal)
    login = (
        Login(UsersSource(http.users_file, http.users_credential), Throttle())
        if http.users_file is not None or http.users_credential is not None
        else None
    )
    settings = WindowSettings(
        watches=[w.name for w in cfg.watches],
        version=__version__,
        read_requires_login=http.read_requires_login,
        public_url=http.public_url,
        journal_writable=lambda: os.access(journal, os.W_OK) and os.access(journal.parent, os.W_OK),
    )
    server = Server(create_app(settings, reader, COUNTERS, actions, login), http.listen)
    server.start()
    return Window(server, reader)
