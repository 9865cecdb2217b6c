"""The argparse parser: every command, its options and its help (packaging/gen_docs.py
builds the man page and bash completion from it)."""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path
from typing import Any

from hotfolder.cli.common import CONFIG_ENV, DEFAULT_CONFIG

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
