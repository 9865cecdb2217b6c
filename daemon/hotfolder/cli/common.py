"""What every command shares: exit codes, where the config is, the log level, and the
journal opened (or refused) with a message an operator can act on."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hotfolder.config import settings as configuration
from hotfolder.service.daemon import JOURNAL_FILE
from hotfolder.state.journal import Journal, JournalError

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


def no_journal_yet(cfg: configuration.Config) -> bool:
    """True, after saying so, when no journal exists: reading must not create the state
    folder (an admin trying `status` before the first start, or with the wrong config)."""
    path = cfg.state_dir / JOURNAL_FILE
    if path.exists():
        return False
    print(f"no submissions yet in {path}")
    return True


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")
