"""The commands that run the daemon or judge its config: `run`, `demo`, `check-config`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from types import FrameType

import structlog

from hotfolder.cli import demo, windows
from hotfolder.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    config_path,
    ended_badly_since,
    load_config,
    log_level,
)
from hotfolder.config import checks as startup
from hotfolder.config import settings as configuration
from hotfolder.config.checks import Severity
from hotfolder.config.sections import LocalTargetSettings
from hotfolder.service import logs
from hotfolder.service.daemon import Daemon
from hotfolder.service.instance import AlreadyRunning, StateDirLock, StateDirUnusable
from hotfolder.service.sd_notify import Notifier
from hotfolder.state.journal import JournalError
from hotfolder.transfer.orphans import stop_orphans


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.config_file is not None:
        if getattr(args, "config", None) is not None:
            print("hotfolder check-config: give the config once, with --config", file=sys.stderr)
            return EXIT_CONFIG
        # Deprecated (see --help), kept for units and scripts written before --config
        # worked here. Silent: its output must stay what `run` prints for the same file.
        args.config = args.config_file
    args.config = config_path(args)
    cfg = load_config(args)
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
    cfg = load_config(args)
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
    notifier = Notifier()
    # Under systemd a start waits for a daemon still on the state dir (see service.instance).
    wait = notifier.still_starting if notifier.enabled and not once else None
    try:
        with StateDirLock(cfg.state_dir, wait):
            return _run_alone(cfg, once, log)
    except (AlreadyRunning, StateDirUnusable) as err:
        log.error("cannot start", reason=str(err), hint=err.hint)  # noqa: TRY400 - says all
        return EXIT_CONFIG


def _run_alone(
    cfg: configuration.Config, once: bool, log: structlog.typing.FilteringBoundLogger
) -> int:
    """run_daemon, once this process is known to be the state dir's only daemon."""
    stop_orphans(cfg.state_dir)  # before anything is decided: see transfer.orphans
    started = datetime.now(UTC)
    try:
        daemon = Daemon(cfg, shutdown_grace=cfg.shutdown_grace)
    except JournalError as err:
        log.error("cannot start", reason=str(err), hint=err.hint)  # noqa: TRY400 - says all
        return EXIT_CONFIG
    _install_signals(daemon)
    try:
        window = None
        if cfg.http is not None:  # Flask and waitress are loaded only for a window
            from hotfolder.cli import web  # noqa: PLC0415

            window = web.start(cfg, daemon)
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
    bad = ended_badly_since(cfg, started)  # a fleet node's own work only (issue 13)
    if bad:
        log.warning("submissions failed or were held during this run", count=len(bad), ids=bad)
        return EXIT_FAILURE
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
