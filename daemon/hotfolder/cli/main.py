"""The command line: parse (cli.parser), then call one function per command (cli.run,
cli.status_cmd, cli.actions). The names below stay importable from here: tests and
packaging/gen_docs.py (`_parser`, for the man page and bash completion) use them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from hotfolder.cli.actions import (
    cmd_backlot,
    cmd_journal,
    cmd_nodes,
    cmd_operator,
    cmd_rate,
    cmd_scan,
)
from hotfolder.cli.common import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    config_path,
    log_level,
)
from hotfolder.cli.parser import _parser
from hotfolder.cli.run import cmd_check_config, cmd_demo, cmd_run, run_daemon
from hotfolder.cli.status_cmd import cmd_status

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "EXIT_CONFIG",
    "EXIT_FAILURE",
    "EXIT_OK",
    "_parser",
    "config_path",
    "log_level",
    "main",
    "run_daemon",
]

HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
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
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        status = HANDLERS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
    except BrokenPipeError:
        # `hotfolder status | head -1`: the reader left. As the Python docs recommend
        # (signal module, "Note on SIGPIPE"), point stdout at devnull so the flush at
        # exit does not raise again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    return status


if __name__ == "__main__":
    sys.exit(main())
