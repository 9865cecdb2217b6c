"""`status` (a table, one submission in detail, or --follow): read from the journal. With a
fleet's journal (a `journal:` block, issue 13) every node's submissions, each with its node."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime

from hotfolder.cli import ops, statusview, windows
from hotfolder.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    load_config,
    no_journal_yet,
    open_configured_journal,
)
from hotfolder.config import settings as configuration
from hotfolder.model import IN_FLIGHT, State
from hotfolder.state.journal import JournalError, Row
from hotfolder.state.port import JournalPort
from hotfolder.state.summary import Speed


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    if args.watch is not None and args.watch not in {w.name for w in cfg.watches}:
        names = ", ".join(w.name for w in cfg.watches)
        print(
            f"hotfolder status: no watch named {args.watch!r} (configured: {names})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if no_journal_yet(cfg):  # never for a fleet: its journal is a server's
        return EXIT_OK
    fleet = cfg.journal is not None
    if args.follow:
        return _follow(cfg, args)
    journal = open_configured_journal(cfg, "status")
    if journal is None:
        return EXIT_CONFIG
    now = datetime.now(UTC)
    try:
        rows, history, speeds = _read(journal, args, now)
    except ops.OperatorError as err:
        print(f"hotfolder status: {err}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(err, ops.AmbiguousId) else EXIT_FAILURE
    except JournalError as err:  # a fleet's server gone mid-read
        print(f"hotfolder status: {err}\n  hint: {err.hint}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        journal.close()
    if args.json:
        shown = [statusview.json_row(r, speeds.get(r.id), fleet) for r in rows]
        print(json.dumps(shown, indent=2))
    elif args.id is not None:
        sys.stdout.write(
            statusview.detail(rows[0], now, speeds.get(rows[0].id), history, fleet=fleet)
        )
    else:
        waits = "".join(f"{line}\n" for line in windows.waiting(cfg, rows, now))  # issue 14
        sys.stdout.write(statusview.table(rows, now, speeds, journal.path, fleet=fleet) + waits)
    return EXIT_OK


def _read(
    journal: JournalPort, args: argparse.Namespace, now: datetime
) -> tuple[list[Row], list[tuple[str, str, str]], dict[str, Speed]]:
    """The rows to show (one submission's, with its history, or the newest 200), and the
    speeds of those in flight. Raises OperatorError for an id that names none or several."""
    if args.id is not None:
        sid = ops.match_id(journal, args.id)
        rows = [r for r in (journal.get(sid),) if r is not None]
        history = journal.history(sid)
    else:
        rows, history = journal.rows(watch=args.watch, limit=200), []
    return rows, history, {r.id: _speed(journal, r, now) for r in rows if r.state in IN_FLIGHT}


def _follow(cfg: configuration.Config, args: argparse.Namespace) -> int:
    """`status --follow`: the table, redrawn every second until Ctrl-C (or SIGTERM)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    fleet = cfg.journal is not None
    # A fleet's server is opened once (its pool replaces broken connections); the SQLite
    # file again at every turn, so that a journal reset while following is seen.
    server = open_configured_journal(cfg, "status") if fleet else None
    if fleet and server is None:
        return EXIT_CONFIG
    try:
        while not stop.is_set():
            journal = server or open_configured_journal(cfg, "status")
            if journal is None:
                return EXIT_CONFIG
            now = datetime.now(UTC)
            try:
                rows = journal.rows(watch=args.watch, limit=200)
                speeds = {r.id: _speed(journal, r, now) for r in rows if r.state in IN_FLIGHT}
            except JournalError as err:  # a fleet's server gone: say so, try again next turn
                print(f"hotfolder status: {err}", file=sys.stderr)
                stop.wait(1.0)
                continue
            finally:
                if journal is not server:
                    journal.close()
            stamp = now.astimezone().strftime("%H:%M:%S")
            sys.stdout.write(
                f"{clear}{statusview.table(rows, now, speeds, journal.path, fleet=fleet)}"
                f"-- {stamp}, every second; Ctrl-C to stop\n"
            )
            sys.stdout.flush()
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.close()
    return EXIT_OK


def _speed(journal: JournalPort, row: Row, now: datetime) -> Speed:
    """Bytes per second since the media session began, and the time left at that pace."""
    started = next(
        (at for at, state, _ in reversed(journal.history(row.id)) if state == State.SENDING_MEDIA),
        None,
    )
    if started is None or row.bytes_done <= 0:
        return None, None
    seconds = (now - datetime.fromisoformat(started)).total_seconds()
    if seconds <= 0:
        return None, None
    rate = row.bytes_done / seconds
    return rate, (row.bytes_total - row.bytes_done) / rate
