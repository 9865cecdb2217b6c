"""The commands that act on the journal, a target or Backlot: `retry`/`hold`/`forget`,
`journal check|reset`, `scan`, `rate`, `nodes`, `backlot`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

from hotfolder.after import backlot, verify
from hotfolder.cli import ops, windows
from hotfolder.cli import scan as survey
from hotfolder.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    confirm,
    load_config,
    log_level,
    no_journal_yet,
    open_configured_journal,
)
from hotfolder.credentials import CredentialError
from hotfolder.service import logs
from hotfolder.service.daemon import JOURNAL_FILE
from hotfolder.state import journal as journal_module
from hotfolder.state.known import JournalKnown


def cmd_operator(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    logs.configure(cfg.logging.target, log_level(cfg, args))
    if no_journal_yet(cfg):
        return EXIT_FAILURE
    journal = open_configured_journal(cfg, args.command)  # a fleet's: the database
    if journal is None:
        return EXIT_CONFIG
    now = datetime.now(UTC)
    try:
        sid = ops.match_id(journal, args.id)
        if (
            args.command == "forget"
            and not args.yes
            and not confirm(
                f"Forget {sid}? If its files are still in the drop folder it will be sent "
                "again. [y/N] "
            )
        ):
            print("nothing done", file=sys.stderr)
            return EXIT_FAILURE
        if args.command == "retry":
            message = ops.retry(journal, cfg, sid, now)
        elif args.command == "hold":
            message = ops.hold(journal, sid, now)
        else:
            message = ops.forget(journal, sid)
    except ops.AmbiguousId as err:
        print(f"hotfolder {args.command}: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except ops.OperatorError as err:
        print(f"hotfolder {args.command}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        journal.close()
    print(message)
    return EXIT_OK


def cmd_journal(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    path = cfg.state_dir / JOURNAL_FILE
    problem = journal_module.check(path)
    if args.journal_command == "check":
        if problem is not None:
            print(f"hotfolder journal: {problem}\n  hint: {problem.hint}", file=sys.stderr)
            return EXIT_CONFIG
        state = "absent (it is created at the first start)" if not path.exists() else "OK"
        print(f"{path}: {state} (schema version {journal_module.SCHEMA_VERSION})")
        return EXIT_OK
    if problem is None or isinstance(problem, journal_module.JournalTooNew):
        print(
            f"hotfolder journal reset: {path} is not damaged; nothing was done"
            + (f" ({problem})" if problem else ""),
            file=sys.stderr,
        )
        return EXIT_FAILURE
    try:
        aside = journal_module.reset(path, datetime.now(UTC))
    except OSError as err:
        print(f"hotfolder journal reset: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"moved the damaged journal to {aside} (kept: nothing was deleted) and started an "
        f"empty one at {path}"
    )
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    watches = [w for w in cfg.watches if args.watch in (None, w.name)]
    if not watches:
        print(f"no watch named {args.watch!r}", file=sys.stderr)
        return EXIT_CONFIG
    shared = cfg.journal is not None  # a fleet: its journal, its ids (model.submission_id)
    journal = None
    if shared or (cfg.state_dir / JOURNAL_FILE).exists():
        journal = open_configured_journal(cfg, "scan")
        if journal is None:
            return EXIT_CONFIG
    known = JournalKnown(journal, cfg.state_dir) if journal else None
    try:
        found = {w.name: survey.survey(w, known, time.time(), shared) for w in watches}
    finally:
        if journal:
            journal.close()
    if args.json:
        print(
            json.dumps(
                {name: [look.as_json() for look in looks] for name, looks in found.items()},
                indent=2,
                default=str,
            )
        )
    else:
        for name, looks in found.items():
            sys.stdout.write(survey.render(name, looks))
    return EXIT_OK


def cmd_rate(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    if not args.clear and not args.rate:
        print("hotfolder rate: say the rate (300Mbps), or --clear", file=sys.stderr)
        return EXIT_CONFIG
    answer = windows.change_rate(cfg, args.target, args.rate, args.for_, args.clear)
    print(f"hotfolder rate: {answer.message}", file=sys.stdout if answer.ok else sys.stderr)
    return EXIT_OK if answer.ok else EXIT_FAILURE


def cmd_nodes(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    from hotfolder.cli import nodes  # noqa: PLC0415 - the PostgreSQL driver, only for this

    return EXIT_OK if nodes.show(cfg) else EXIT_CONFIG


def cmd_backlot(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg is None:
        return EXIT_CONFIG
    names = sorted(cfg.backlot)
    name = args.account or (names[0] if len(names) == 1 else None)
    if name not in cfg.backlot:
        print(
            f"hotfolder backlot: say which account with --account (configured: "
            f"{', '.join(names) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        client = verify.client_for(cfg.backlot[name])
        if args.backlot_command == "asset":
            print(json.dumps(client.asset(args.embed_code), indent=2, sort_keys=True))
        elif args.backlot_command == "find":
            for item in client.find(args.where, args.limit):
                print(json.dumps(item, sort_keys=True))
        else:
            path = client.download_source(args.embed_code, args.output, backlot.terminal_progress)
            print(path)
    except (backlot.BacklotError, CredentialError) as err:
        print(f"hotfolder backlot: {err}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
