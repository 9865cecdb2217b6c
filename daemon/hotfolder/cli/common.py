"""What every command shares: exit codes, where the config is, the log level, and the
journal opened (or refused) with a message an operator can act on: the SQLite file in
state_dir, or a fleet's PostgreSQL journal when the config has a `journal:` block (psycopg is
imported only then: a single workstation's commands never load it)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hotfolder.config import settings as configuration
from hotfolder.config.fleet import JournalSettings
from hotfolder.service.daemon import JOURNAL_FILE
from hotfolder.state.journal import Journal, JournalError
from hotfolder.state.port import JournalPort

if TYPE_CHECKING:  # the driver is loaded only for a fleet (_open_fleet)
    from hotfolder.state.pg_journal import PgJournal

EXIT_OK = 0


EXIT_FAILURE = 1  # the command ran, but something did not succeed


EXIT_CONFIG = 2  # nothing a restart fixes: the config, the journal or the arguments


#: Where the config is when neither --config nor $HOTFOLDER_CONFIG says otherwise.
DEFAULT_CONFIG = Path("/etc/hotfolder/hotfolder.yaml")


CONFIG_ENV = "HOTFOLDER_CONFIG"


LEVELS = ("debug", "info", "warning", "error")


def config_path(args: argparse.Namespace) -> Path:
    """--config, else $HOTFOLDER_CONFIG, else /etc/hotfolder/hotfolder.yaml."""
    given: Path | None = getattr(args, "config", None)
    if given is not None:
        return given
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG


def log_level(cfg: configuration.Config, args: argparse.Namespace) -> str:
    """The config's level, moved down one step per -v and up one per -q."""
    shift = getattr(args, "quiet", 0) - getattr(args, "verbose", 0)
    index = LEVELS.index(cfg.logging.level) + shift
    return LEVELS[max(0, min(index, len(LEVELS) - 1))]


def load_config(args: argparse.Namespace) -> configuration.Config | None:
    path = config_path(args)
    try:
        return configuration.load(path)
    except configuration.InvalidConfig as err:
        count = len(err.errors)
        print(f"{path}: {count} error{'s' if count != 1 else ''}:", file=sys.stderr)
        for e in err.errors:
            print(f"  {e}", file=sys.stderr)
        if not path.exists():
            print(
                f"  hint: say which config with --config FILE or ${CONFIG_ENV} "
                f"(without either, hotfolder reads {DEFAULT_CONFIG})",
                file=sys.stderr,
            )
        return None


def open_journal(cfg: configuration.Config, command: str) -> Journal | None:
    """The journal, or None after saying on stderr why it cannot be used and what to do."""
    try:
        return Journal(cfg.state_dir / JOURNAL_FILE)
    except JournalError as err:
        print(f"hotfolder {command}: {err}\n  hint: {err.hint}", file=sys.stderr)
        return None


def open_configured_journal(cfg: configuration.Config, command: str) -> JournalPort | None:
    """The journal `status` reads and an operator's retry, hold or forget writes: a fleet's
    when the config has a `journal:` block (every node's rows, each with its node; opened
    without registering as a node or beating a heartbeat), else the SQLite file. None after
    saying on stderr why not and what to do."""
    if cfg.journal is None:
        return open_journal(cfg, command)
    try:
        return _open_fleet(cfg.journal)
    except JournalError as err:
        print(f"hotfolder {command}: {err}\n  hint: {err.hint}", file=sys.stderr)
        return None


def ended_badly_since(cfg: configuration.Config, since: datetime) -> list[str]:
    """`run --once`'s verdict: submissions failed or held since `since` by this process's own
    work. In a fleet, only those this node put there (the journal holds every node's)."""
    if cfg.journal is None:
        journal = Journal(cfg.state_dir / JOURNAL_FILE)
        try:
            return journal.ended_badly_since(since)
        finally:
            journal.close()
    fleet = _open_fleet(cfg.journal)
    try:
        return fleet.ended_badly_since(since, node=fleet.node)
    finally:
        fleet.close()


def _open_fleet(given: JournalSettings) -> PgJournal:
    """A fleet's journal for one command: no node row, no heartbeat, one connection. The
    driver is imported only here: a single workstation's CLI never loads it."""
    from hotfolder.state.pg_connection import FleetSettings  # noqa: PLC0415
    from hotfolder.state.pg_journal import PgJournal  # noqa: PLC0415

    return PgJournal.open(FleetSettings.of(given), register=False, max_connections=1)


def no_journal_yet(cfg: configuration.Config) -> bool:
    """True, after saying so, when no journal exists: reading must not create the state
    folder (an admin trying `status` before the first start, or with the wrong config)."""
    path = cfg.state_dir / JOURNAL_FILE
    if cfg.journal is not None or path.exists():  # a fleet's journal is the database's
        return False
    print(f"no submissions yet in {path}")
    return True


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")
