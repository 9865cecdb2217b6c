"""The command line: parse, then call one function per command."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from hotfolder.after import backlot, verify
from hotfolder.cli import demo, nodes, ops, statusview, web, windows
from hotfolder.cli import scan as survey
from hotfolder.config import checks as startup
from hotfolder.config import settings as configuration
from hotfolder.config.checks import Severity
from hotfolder.config.sections import LocalTargetSettings
from hotfolder.credentials import CredentialError
from hotfolder.model import IN_FLIGHT, State
from hotfolder.service import logs
from hotfolder.service.daemon import JOURNAL_FILE, Daemon
from hotfolder.state import journal as journal_module
from hotfolder.state.journal import Journal, JournalError, Row

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran, but something did not succeed
EXIT_CONFIG = 2  # nothing a restart fixes: the config, the journal or the arguments

#: Where the config is when neither --config nor $HOTFOLDER_CONFIG says otherwise.
DEFAULT_CONFIG = Path("/etc/hotfolder/hotfolder.yaml")
CONFIG_ENV = "HOTFOLDER_CONFIG"
LEVELS = ("debug", "info", "warning", "error")

EXIT_CODES = f"""\
config file:
  --config/-c FILE on any command, else ${CONFIG_ENV}, else {DEFAULT_CONFIG}

exit status:
  0  done: everything asked for succeeded
  1  something did not succeed: `run --once` had a submission fail or held, an operator
     action did not apply, a Backlot request failed
  2  nothing was done and a restart will not help: invalid config or arguments (an
     ambiguous submission ID too), a start-up check failed, or the journal is damaged or
     from a newer hotfolder (the message says what to do; `hotfolder journal reset` starts
     a new journal, keeping the damaged one)
"""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        handler = {
            "run": cmd_run,
            "check-config": cmd_check_config,
            "demo": cmd_demo,
            "status": cmd_status,
            "scan": cmd_scan,
            "retry": cmd_operator,
            "hold": cmd_operator,
            "forget": cmd_operator,
            "backlot": cmd_backlot,
            "journal": cmd_journal,
            "rate": cmd_rate,
            "nodes": cmd_nodes,
        }[args.command]
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
    except BrokenPipeError:
        # `hotfolder status | head -1`: the reader left. As the Python docs recommend
        # (signal module, "Note on SIGPIPE"), point stdout at devnull so the flush at
        # exit does not raise again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    return status


def _version() -> str:
    try:
        return importlib.metadata.version("hotfolder")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (rclone's and borgmatic's
    way). SUPPRESS: a subcommand that does not see the option keeps what the top saw."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        "-c",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"the config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=argparse.SUPPRESS,
        help="log more (-v: debug) than the config's logging.level",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="count",
        default=argparse.SUPPRESS,
        help="log less (-q: warning, -qq: error)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="hotfolder",
        description="Drop-folder video ingest: manifest last, never twice.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"hotfolder {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    run = command(
        "run",
        help="run the daemon in the foreground",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="exit when nothing is waiting or transferring (for cron and tests); exit "
        "status 1 if a submission failed or was held during the run",
    )
    check = command(
        "check-config",
        help="validate a config and print every error",
        description="Validate the config (every error at once, with file, line and key), "
        "then check what it names: the ascp executable and the credential files. Says "
        "which checks it could not make (a systemd credential outside the unit).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "config_file",
        metavar="CONFIG",
        nargs="?",
        type=Path,
        help="deprecated: say --config CONFIG, as every other command does",
    )
    check.add_argument(
        "--config-only",
        action="store_true",
        help="check the file only, not executables and credentials (for ExecStartPre and "
        "ExecReload: the daemon holds a submission that needs a missing one, and alerts)",
    )
    dem = command(
        "demo",
        help="drop a sample submission into ./demo and run (works in any folder; "
        "--config: your own demo config instead of the packaged one)",
    )
    dem.add_argument("--once", action="store_true", help="exit once the sample is delivered")
    scan = command("scan", help="show what the daemon would do now, sending nothing")
    scan.add_argument("--watch", help="only this watch")
    scan.add_argument("--json", action="store_true", help="machine-readable output")
    for name, text in (
        ("retry", "release a held submission, or put a failed one back"),
        ("hold", "keep a pending or ready submission from being sent"),
        ("forget", "remove a submission from the journal"),
    ):
        op = command(name, help=text)
        op.add_argument("id", help="a submission ID, or enough of its start to be unique")
        if name == "forget":
            op.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rate = command(
        "rate",
        help="change a target's rate now, running sessions included (through the daemon)",
    )
    rate.add_argument("target", help="an ascp target's name")
    rate.add_argument("rate", nargs="?", help="bits per second: 300Mbps, 1Gbps")
    rate.add_argument("--for", dest="for_", metavar="DURATION", help="only this long: 2h, 30m")
    rate.add_argument("--clear", action="store_true", help="back to the window's or target's")
    bl = command("backlot", help="Backlot V2 API: look up assets, fetch a source file")
    bl.add_argument("--account", help="a name under `backlot:` (default: the only one)")
    bl_sub = bl.add_subparsers(dest="backlot_command", required=True)
    asset = bl_sub.add_parser("asset", parents=[common], help="print an asset as JSON")
    asset.add_argument("embed_code")
    source = bl_sub.add_parser("source", parents=[common], help="download an asset's source file")
    source.add_argument("embed_code")
    source.add_argument("-o", "--output", type=Path, default=Path("."))
    find = bl_sub.add_parser(
        "find", parents=[common], help="query assets, e.g. --where \"labels INCLUDES 'x'\""
    )
    find.add_argument("--where", required=True)
    find.add_argument("--limit", type=int, default=100)
    jr = command("journal", help="check the journal, or start a new one if damaged")
    jr_sub = jr.add_subparsers(dest="journal_command", required=True)
    jr_sub.add_parser(
        "check", parents=[common], help="open the journal and check its integrity and version"
    )
    jr_sub.add_parser(
        "reset",
        parents=[common],
        help="only for a damaged journal, with the daemon stopped: rename it to "
        "journal.sqlite.damaged-<time> (kept, never deleted) and start an empty one",
    )
    command(
        "nodes",
        help="a fleet's workstations (journal: in the config) with their last heartbeat",
        description="The nodes sharing the PostgreSQL journal, by the database's clock.",
    )
    status = command(
        "status",
        help="list submissions from the journal, newest first",
        description="A table of submissions (newest first), or one submission in detail.",
    )
    status.add_argument(
        "id", nargs="?", help="show this submission in detail (enough of its ID to be unique)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--watch", metavar="NAME", help="only this watch's submissions")
    status.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="redraw the table every second until Ctrl-C",
    )
    return parser


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


def _load(args: argparse.Namespace) -> configuration.Config | None:
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


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.config_file is not None:
        if getattr(args, "config", None) is not None:
            print("hotfolder check-config: give the config once, with --config", file=sys.stderr)
            return EXIT_CONFIG
        # Deprecated (see --help), kept for units and scripts written before --config
        # worked here. Silent: its output must stay what `run` prints for the same file.
        args.config = args.config_file
    args.config = config_path(args)
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    found = [] if args.config_only else startup.environment(cfg)
    errors = [f for f in found if f.severity is Severity.ERROR]
    warnings = [f for f in found if f.severity is Severity.WARNING]
    if errors:
        count = len(errors)
        print(f"{args.config}: {count} error{'s' if count != 1 else ''}:", file=sys.stderr)
    for finding in (*errors, *warnings):
        print(f"  {finding}", file=sys.stderr)
    for finding in found:
        if finding.severity is Severity.NOT_CHECKED:
            print(f"  {finding}")
    if errors:
        return EXIT_CONFIG
    warned = f" with {len(warnings)} warnings" if warnings else ""
    print(f"{args.config}: OK ({len(cfg.watches)} watches, {len(cfg.targets)} targets){warned}")
    for line in windows.explained(cfg):  # issue 14: each schedule, overlaps and gaps
        print(f"  {line}")
    if args.config_only:
        print("  checked the file only, not executables and credentials (--config-only)")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    return run_daemon(cfg, once=args.once, level=log_level(cfg, args))


def run_daemon(cfg: configuration.Config, once: bool = False, level: str | None = None) -> int:
    """The daemon in this process. With `once`, exit status 1 if a submission failed or was
    held while it ran (cron and scripts need to know); a service run ends 0."""
    logs.configure(cfg.logging.target, level or cfg.logging.level)
    log = structlog.get_logger()
    problems = startup.check(cfg)
    if problems:
        for p in problems:
            log.error("cannot start", reason=p.message, hint=p.hint)
        return EXIT_CONFIG
    for finding in startup.environment(cfg):
        # Not fatal: a submission that needs what is missing is held, and the admin alerted.
        log.warning(
            "the config names something this process cannot use",
            reason=f"{finding.severity}: {finding.where.message}",
            key=configuration.format_path(finding.where.path),
            hint=finding.where.hint,
        )
    started = datetime.now(UTC)
    try:
        daemon = Daemon(cfg, shutdown_grace=cfg.shutdown_grace)
    except JournalError as err:
        log.error("cannot start", reason=str(err), hint=err.hint)  # noqa: TRY400 - says all
        return EXIT_CONFIG
    _install_signals(daemon)
    try:
        window = web.start(cfg, daemon)  # None unless the config has http:
    except OSError as err:
        log.error(  # noqa: TRY400 - the reason says all
            "cannot start",
            reason=f"the web window cannot listen: {err}",
            hint="free the port, or change http.listen",
        )
        return EXIT_CONFIG
    try:
        daemon.run(once=once)
    finally:
        if window is not None:
            window.stop()
    if not once:
        return EXIT_OK
    journal = Journal(cfg.state_dir / JOURNAL_FILE)
    try:
        bad = journal.ended_badly_since(started)
    finally:
        journal.close()
    if bad:
        log.warning("submissions failed or were held during this run", count=len(bad), ids=bad)
        return EXIT_FAILURE
    return EXIT_OK


def _open_journal(cfg: configuration.Config, command: str) -> Journal | None:
    """The journal, or None after saying on stderr why it cannot be used and what to do."""
    try:
        return Journal(cfg.state_dir / JOURNAL_FILE)
    except JournalError as err:
        print(f"hotfolder {command}: {err}\n  hint: {err.hint}", file=sys.stderr)
        return None


def _no_journal_yet(cfg: configuration.Config) -> bool:
    """True, after saying so, when no journal exists: reading must not create the state
    folder (an admin trying `status` before the first start, or with the wrong config)."""
    path = cfg.state_dir / JOURNAL_FILE
    if path.exists():
        return False
    print(f"no submissions yet in {path}")
    return True


def cmd_journal(args: argparse.Namespace) -> int:
    cfg = _load(args)
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


def _install_signals(daemon: Daemon) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if daemon.stop_event.is_set():
            daemon.cancel_event.set()  # second signal: cold stop, cancel transfers now
        structlog.get_logger().info("stopping", signal=signal.Signals(signum).name)
        daemon.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: daemon.request_reload())


def cmd_demo(args: argparse.Namespace) -> int:
    cfg = demo.prepare(getattr(args, "config", None))
    if cfg is None:
        return EXIT_CONFIG
    target = cfg.targets[cfg.watches[0].target].settings
    print(
        f"hotfolder demo: sample submission dropped into {cfg.watches[0].path}; "
        f"delivering to {target.path if isinstance(target, LocalTargetSettings) else None}. "
        + ("" if args.once else "Ctrl-C to stop."),
        file=sys.stderr,
    )
    return run_daemon(cfg, once=args.once, level=log_level(cfg, args))


def cmd_scan(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    watches = [w for w in cfg.watches if args.watch in (None, w.name)]
    if not watches:
        print(f"no watch named {args.watch!r}", file=sys.stderr)
        return EXIT_CONFIG
    journal = None
    if (cfg.state_dir / JOURNAL_FILE).exists():
        journal = _open_journal(cfg, "scan")
        if journal is None:
            return EXIT_CONFIG
    try:
        found = {w.name: survey.survey(w, journal, time.time()) for w in watches}
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


def cmd_operator(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    logs.configure(cfg.logging.target, log_level(cfg, args))
    if _no_journal_yet(cfg):
        return EXIT_FAILURE
    journal = _open_journal(cfg, args.command)
    if journal is None:
        return EXIT_CONFIG
    now = datetime.now(UTC)
    try:
        sid = ops.match_id(journal, args.id)
        if (
            args.command == "forget"
            and not args.yes
            and not _confirm(
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


def cmd_backlot(args: argparse.Namespace) -> int:
    cfg = _load(args)
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


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(question).strip().lower() in ("y", "yes")


def cmd_status(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    if args.watch is not None and args.watch not in {w.name for w in cfg.watches}:
        names = ", ".join(w.name for w in cfg.watches)
        print(
            f"hotfolder status: no watch named {args.watch!r} (configured: {names})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if _no_journal_yet(cfg):
        return EXIT_OK
    if args.follow:
        return _follow(cfg, args)
    journal = _open_journal(cfg, "status")
    if journal is None:
        return EXIT_CONFIG
    now = datetime.now(UTC)
    try:
        if args.id is not None:
            try:
                sid = ops.match_id(journal, args.id)
            except ops.OperatorError as err:
                print(f"hotfolder status: {err}", file=sys.stderr)
                return EXIT_CONFIG if isinstance(err, ops.AmbiguousId) else EXIT_FAILURE
            rows = [r for r in (journal.get(sid),) if r is not None]
            history = journal.history(sid)
        else:
            rows, history = journal.rows(watch=args.watch, limit=200), []
        speeds = {r.id: _speed(journal, r, now) for r in rows if r.state in IN_FLIGHT}
    finally:
        journal.close()
    if args.json:
        print(json.dumps([statusview.as_json(r, speeds.get(r.id)) for r in rows], indent=2))
    elif args.id is not None:
        sys.stdout.write(statusview.detail(rows[0], now, speeds.get(rows[0].id), history))
    else:
        waits = "".join(f"{line}\n" for line in windows.waiting(cfg, rows, now))  # issue 14
        sys.stdout.write(statusview.table(rows, now, speeds, journal.path) + waits)
    return EXIT_OK


def cmd_nodes(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    return EXIT_OK if nodes.show(cfg) else EXIT_CONFIG


def cmd_rate(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if cfg is None:
        return EXIT_CONFIG
    if not args.clear and not args.rate:
        print("hotfolder rate: say the rate (300Mbps), or --clear", file=sys.stderr)
        return EXIT_CONFIG
    answer = windows.change_rate(cfg, args.target, args.rate, args.for_, args.clear)
    print(f"hotfolder rate: {answer.message}", file=sys.stdout if answer.ok else sys.stderr)
    return EXIT_OK if answer.ok else EXIT_FAILURE


def _follow(cfg: configuration.Config, args: argparse.Namespace) -> int:
    """`status --follow`: the table, redrawn every second until Ctrl-C (or SIGTERM)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    try:
        while not stop.is_set():
            journal = _open_journal(cfg, "status")
            if journal is None:
                return EXIT_CONFIG
            now = datetime.now(UTC)
            try:
                rows = journal.rows(watch=args.watch, limit=200)
                speeds = {r.id: _speed(journal, r, now) for r in rows if r.state in IN_FLIGHT}
            finally:
                journal.close()
            stamp = now.astimezone().strftime("%H:%M:%S")
            sys.stdout.write(
                f"{clear}{statusview.table(rows, now, speeds, journal.path)}"
                f"-- {stamp}, every second; Ctrl-C to stop\n"
            )
            sys.stdout.flush()
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _speed(journal: Journal, row: Row, now: datetime) -> tuple[float | None, float | None]:
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


if __name__ == "__main__":
    sys.exit(main())
