"""Logging: structlog everywhere, rendered for where the lines go.

- journald: native fields through systemd-python (`SUBMISSION_ID`, `WATCH`, `STATE`, ...), so
  `journalctl -u hotfolder SUBMISSION_ID=...` finds one submission's whole story;
- console: pretty lines for a person at a terminal;
- json: one JSON object per line for anything else (containers, files, pipes).
Secrets are masked by key before any renderer sees them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SYSLOG_IDENTIFIER = "hotfolder"
SECRET_MARKERS = ("password", "secret", "token", "passphrase", "api_key", "credential")
MASK = "*****"

#: structlog level name -> syslog priority (journald's PRIORITY field).
PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}

EventDict = MutableMapping[str, Any]

#: Where the line that logged is, found by structlog (skipping its own and logging's frames),
#: so journald's CODE_FILE/CODE_LINE/CODE_FUNC name that line and not this module's renderer.
CALLSITE = structlog.processors.CallsiteParameterAdder(
    [
        structlog.processors.CallsiteParameter.PATHNAME,
        structlog.processors.CallsiteParameter.LINENO,
        structlog.processors.CallsiteParameter.FUNC_NAME,
    ]
)


def mask_secrets(_logger: Any, _name: str, event: EventDict) -> EventDict:
    for key in list(event):
        if any(m in key.lower() for m in SECRET_MARKERS):
            event[key] = MASK
    return event


class JournaldRenderer:
    """Send each event to journald as native fields; nothing is written to a stream."""

    def __init__(self, send: Any = None) -> None:
        if send is None:
            from systemd import journal  # noqa: PLC0415 - only loaded when journald is used

            send = journal.send
        self._send = send

    def __call__(self, _logger: Any, _name: str, event: EventDict) -> str:
        message = str(event.pop("event", ""))
        level = str(event.pop("level", "info"))
        event.pop("timestamp", None)
        code = {
            "CODE_FILE": str(event.pop("pathname", "")) or None,
            "CODE_LINE": event.pop("lineno", None),
            "CODE_FUNC": event.pop("func_name", None),
        }
        fields = {_field_name(k): _field_value(v) for k, v in event.items() if v is not None}
        fields.pop("MESSAGE", None)
        extra = " ".join(
            f"{k}={v}"
            for k, v in event.items()
            if k not in ("submission_id", "watch", "state") and v is not None
        )
        self._send(
            f"{message} {extra}".rstrip(),
            PRIORITY=str(PRIORITY.get(level, 6)),
            SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER,
            **code,
            **fields,
        )
        raise structlog.DropEvent


def _field_name(key: str) -> str:
    name = "".join(c if c.isalnum() else "_" for c in key.upper()).lstrip("_")
    return name or "FIELD"


def _field_value(value: Any) -> str:
    return str(value)


def under_systemd() -> bool:
    """True when stderr is connected to the journal (systemd sets JOURNAL_STREAM to it)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def resolve_target(target: str, stream: TextIO) -> str:
    if target != "auto":
        return target
    if under_systemd():
        return "journald"
    return "console" if stream.isatty() else "json"


def configure(target: str = "auto", level: str = "info", stream: TextIO | None = None) -> str:
    """Set up structlog; return the target actually used."""
    stream = stream or sys.stderr
    chosen = resolve_target(target, stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        mask_secrets,
    ]
    renderer: Any
    if chosen == "journald":
        shared.append(CALLSITE)
        renderer = JournaldRenderer()
    elif chosen == "console":
        shared.append(structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False))
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    else:
        shared.append(structlog.processors.TimeStamper(fmt="iso", utc=True))
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    return chosen
