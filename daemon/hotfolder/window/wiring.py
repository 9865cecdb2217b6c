"""Starts the window from the config beside a running daemon (`hotfolder run`): over the
SQLite journal in state_dir, or over a fleet's PostgreSQL journal when the config has a
`journal:` block (every node's submissions, each with its node; /metrics counts this node's
own work). psycopg is loaded only for a fleet."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from hotfolder import __version__
from hotfolder.config.settings import Config, HttpConfig
from hotfolder.metrics import COUNTERS
from hotfolder.model import State
from hotfolder.service.daemon import JOURNAL_FILE
from hotfolder.state.reader import JournalReader
from hotfolder.window.app import Actions, Outcome, WindowSettings, create_app
from hotfolder.window.reading import Reader
from hotfolder.window.server import Server
from hotfolder.window.users import Login, Throttle, UsersSource

__all__ = ["Actions", "Outcome", "Window", "start"]


class Window:
    """The running window: its server and the reader it must close."""

    def __init__(self, server: Server, reader: Reader) -> None:
        self.server = server
        self.reader = reader

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self.server.addresses

    def stop(self) -> None:
        self.server.stop()
        self.reader.close()


class _Source:
    """The journal as the window reads it, and what that changes on the page."""

    def __init__(self, cfg: Config) -> None:
        self.fleet = cfg.journal is not None
        self.own_counts: Callable[[], Mapping[str, Mapping[State, int]]] | None = None
        if cfg.journal is not None:
            # Only a fleet loads the PostgreSQL driver (start-up cost, see cli.run).
            from hotfolder.state.pg_connection import FleetSettings  # noqa: PLC0415
            from hotfolder.state.pg_reader import PgJournalReader  # noqa: PLC0415

            fleet = PgJournalReader.open(FleetSettings.of(cfg.journal))
            node = fleet.node
            self.reader: Reader = fleet
            self.own_counts = lambda: fleet.counts(node=node)
            self.writable: Callable[[], bool] = lambda: True  # the main loop says (journal_ok)
        else:
            path = cfg.state_dir / JOURNAL_FILE
            self.reader = JournalReader(path)
            self.writable = lambda: os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def start(cfg: Config, actions: Actions) -> Window | None:
    """Serve the window as `cfg.http` says (None when it is off). Raises JournalError when a
    fleet's journal cannot be opened."""
    http: HttpConfig | None = cfg.http
    if http is None:
        return None
    COUNTERS.targets = {w.name: w.target for w in cfg.watches}
    source = _Source(cfg)
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
        journal_writable=source.writable,
        fleet=source.fleet,
        own_counts=source.own_counts,
    )
    try:
        server = Server(create_app(settings, source.reader, COUNTERS, actions, login), http.listen)
        server.start()
    except BaseException:
        source.reader.close()  # a fleet reader's pool runs threads
        raise
    return Window(server, source.reader)
