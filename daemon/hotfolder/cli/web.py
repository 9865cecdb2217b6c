"""The web window beside `hotfolder run`: its operator actions are the CLI's own (`ops`), so a
button and `hotfolder retry` do the same thing, and every action is logged with its user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from hotfolder.cli import ops
from hotfolder.config.settings import Config
from hotfolder.service.daemon import Daemon
from hotfolder.window import wiring
from hotfolder.window.app import Actions, Outcome

log = structlog.get_logger()


def start(cfg: Config, daemon: Daemon) -> wiring.Window | None:
    """Serve the window if the config asks for it (None when `http:` is absent)."""

    def guarded(action: Callable[[str], str]) -> Callable[[str, str], Outcome]:
        def run(sid: str, who: str) -> Outcome:
            with structlog.contextvars.bound_contextvars(user=who, via="web"):
                try:
                    return Outcome(True, action(sid))
                except ops.OperatorError as err:
                    return Outcome(False, str(err))

        return run

    journal = daemon.journal
    actions = Actions(
        retry=guarded(lambda sid: ops.retry(journal, cfg, sid, datetime.now(UTC))),
        hold=guarded(lambda sid: ops.hold(journal, sid, datetime.now(UTC))),
    )
    window = wiring.start(cfg, actions)  # a fleet's journal too (issue 13): every node's rows
    if window is not None:
        log.info("web window listening", addresses=[f"{h}:{p}" for h, p in window.addresses])
    return window
